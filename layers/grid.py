"""网格 / 单元网格: grids tile the city; each belongs to a community (社区/村)."""

from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from geoservice.models import Place
from geoservice.registry import Attribute, Claim, LayerSpec
from geoservice.vocab import GRID_TYPES


class Grid(Place):
    __tablename__ = "grids"

    id: Mapped[int] = mapped_column(ForeignKey("places.id", ondelete="CASCADE"), primary_key=True)
    geom: Mapped[Any] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=True), nullable=False
    )
    community_id: Mapped[int | None] = mapped_column(
        ForeignKey("admin_areas.id", ondelete="RESTRICT"), index=True
    )
    grid_type: Mapped[str] = mapped_column(String(16), nullable=False, server_default="综合网格")

    __mapper_args__ = {"polymorphic_identity": "grid"}


LAYER = LayerSpec(
    name="grid",
    collection="grids",
    title="网格",
    model=Grid,
    geometry_types=("Polygon", "MultiPolygon"),
    claim=Claim("contains"),
    precedence=10,
    attributes=(Attribute("grid_type", "网格类型", choices=GRID_TYPES),),
    code_pattern=r"\d{15}",
    code_hint="网格编码为15位数字：县(6位)+街道(3位)+社区(3位)+顺序号(3位)",
    roles=("网格长", "网格员", "包保责任人"),
    style={"color": "#3b6ea8", "weight": 1, "fillOpacity": 0.05},
    label="code",
    description="单元网格（GB/T 30428），面上有网",
)
