"""居民小区: residential compounds (新建小区 / 老旧小区 / 村改居社区)."""

from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from geoservice.models import Place
from geoservice.registry import Attribute, Claim, LayerSpec
from geoservice.vocab import COMPOUND_TYPES, PROPERTY_TYPES


class Compound(Place):
    __tablename__ = "compounds"

    id: Mapped[int] = mapped_column(ForeignKey("places.id", ondelete="CASCADE"), primary_key=True)
    geom: Mapped[Any] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False
    )
    compound_type: Mapped[str] = mapped_column(String(16), nullable=False, index=True)
    property_type: Mapped[str | None] = mapped_column(String(16))
    building_count: Mapped[int | None] = mapped_column(Integer)

    __mapper_args__ = {"polymorphic_identity": "compound"}


LAYER = LayerSpec(
    name="compound",
    collection="compounds",
    title="居民小区",
    model=Compound,
    geometry_types=("Polygon", "MultiPolygon"),
    claim=Claim("contains"),
    precedence=30,
    attributes=(
        Attribute("compound_type", "小区类型", required=True, choices=COMPOUND_TYPES),
        Attribute("property_type", "物业类型", choices=PROPERTY_TYPES),
        Attribute("building_count", "楼栋数", type=int),
    ),
    roles=("楼栋长", "包保责任人", "单元长", "社区长"),
    style={"color": "#27ae60", "weight": 2, "fillOpacity": 0.25},
    style_by=(
        "compound_type",
        {
            "新建小区": {"color": "#27ae60"},
            "老旧小区": {"color": "#d35400"},
            "村改居社区": {"color": "#16a085"},
        },
    ),
    description="新建小区、老旧小区、村改居社区",
)
