"""农贸市场: farmers' markets, a polygon (or a point where only the site is known)."""

from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from geoservice.models import Place
from geoservice.registry import Attribute, Claim, LayerSpec


class Market(Place):
    __tablename__ = "markets"
    __table_args__ = (
        CheckConstraint(
            "GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON')", "geom_point_or_polygon"
        ),
    )

    id: Mapped[int] = mapped_column(ForeignKey("places.id", ondelete="CASCADE"), primary_key=True)
    geom: Mapped[Any] = mapped_column(
        Geometry("GEOMETRY", srid=4326, spatial_index=True), nullable=False
    )
    address: Mapped[str | None] = mapped_column(String(200))

    __mapper_args__ = {"polymorphic_identity": "market"}


Index("ix_markets_geog", func.geography(Market.__table__.c.geom), postgresql_using="gist")


LAYER = LayerSpec(
    name="market",
    collection="markets",
    title="农贸市场",
    model=Market,
    geometry_types=("Polygon", "MultiPolygon", "Point"),
    # Polygons claim what lies inside them; a market known only as a point claims its
    # surroundings. Both are covered by a small distance (0 m to a polygon = inside).
    claim=Claim("within", tolerance_m=10.0),
    precedence=40,
    attributes=(Attribute("address", "地址", max_length=200),),
    roles=("点长", "联点领导", "包保责任人"),
    style={"color": "#8e44ad", "weight": 2, "fillOpacity": 0.35},
    description="农贸市场（菜市场）",
)
