"""What the maps draw: counts, choropleth, heat, popups."""
