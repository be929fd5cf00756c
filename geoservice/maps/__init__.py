"""What the maps draw: counts, choropleth, heat and latest issues (mapdata.py) and popup
contents (mappopups.py), for /map, /screen and the map JSON of the API.

May import: ranking and every domain package below it, plumbing. Contracts: .importlinter.
"""
