"""点位: the field sites the evaluation samples. Their kinds are data (site_kinds, managed over
the API and on /assessment/kinds), so this one declaration covers every kind; the model and
the per-kind behaviour live in geoservice/assessment/."""

from geoservice.assessment.catalogue import SiteLayerSpec
from geoservice.assessment.models import Site
from geoservice.registry import Attribute, Claim

LAYER = SiteLayerSpec(
    name="site",
    collection="sites",
    title="点位",
    model=Site,
    geometry_types=("Point", "Polygon", "MultiPolygon"),
    # The kind's claim radius and precedence apply (geoservice.assessment.catalogue); this
    # tolerance only satisfies the declaration's checks.
    claim=Claim("within", tolerance_m=30.0),
    precedence=50,
    attributes=(Attribute("address", "地址", max_length=200),),
    roles=("点长", "联点领导", "包保责任人"),
    style={"color": "#00838f", "weight": 2, "fillOpacity": 0.35, "radius": 5},
    description="实地考察点位（各类别），类别由数据定义",
)
