"""道路: graded roads; an issue within a few tens of metres belongs to the road (道路长)."""

from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from geoservice.models import Place
from geoservice.registry import Attribute, Claim, LayerSpec
from geoservice.vocab import ROAD_GRADES


class Road(Place):
    __tablename__ = "roads"
    id: Mapped[int] = mapped_column(ForeignKey("places.id", ondelete="CASCADE"), primary_key=True)
    geom: Mapped[Any] = mapped_column(
        Geometry("MULTILINESTRING", srid=4326, spatial_index=True), nullable=False
    )
    grade: Mapped[str] = mapped_column(String(16), nullable=False, index=True)

    __mapper_args__ = {"polymorphic_identity": "road"}


# Metre-based claims (ST_DWithin on geography) need an index on the cast.
Index("ix_roads_geog", func.geography(Road.__table__.c.geom), postgresql_using="gist")


LAYER = LayerSpec(
    name="road",
    collection="roads",
    title="道路",
    model=Road,
    geometry_types=("LineString", "MultiLineString"),
    claim=Claim(
        "within",
        tolerance_m=30.0,
        tolerance_by=("grade", {"主干道": 40.0, "次干道": 30.0, "背街小巷": 15.0}),
    ),
    precedence=20,
    attributes=(Attribute("grade", "道路等级", required=True, choices=ROAD_GRADES),),
    roles=("道路长", "包保责任人", "联点领导"),
    style={"color": "#c0392b", "weight": 3, "opacity": 0.9},
    style_by=(
        "grade",
        {
            "主干道": {"color": "#c0392b", "weight": 5},
            "次干道": {"color": "#e67e22", "weight": 3},
            "背街小巷": {"color": "#7f8c8d", "weight": 2},
        },
    ),
    description="主干道、次干道、背街小巷",
)
