"""Mojibake detection: text read with the wrong encoding (a GBK file read as UTF-8 or the
other way round, Latin-1 bytes of Chinese text). File imports (layers and admin areas) refuse
or flag such values instead of storing them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from geoservice.catalogue.validation import Problem


def _latin1_bytes(text_: str) -> bytes | None:
    """The bytes behind text that was decoded as Latin-1, if it has any beyond ASCII."""
    try:
        raw = text_.encode("latin-1")
    except UnicodeEncodeError:
        return None
    return raw if any(b >= 0x80 for b in raw) else None


def _has_cjk(text_: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text_)


def _chinese(text_: str) -> bool:
    """Reads as Chinese: two or more CJK characters, or CJK for half of it (so that
    `Zürich` decoded as GBK, `Z黵ich`, does not count)."""
    cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in text_)
    return cjk >= 2 or cjk * 2 >= len(text_.strip()) > 0


def _as(raw: bytes | None, encoding: str) -> str | None:
    """`raw` decoded as `encoding` when that gives Chinese text, else None."""
    if raw is None:
        return None
    try:
        decoded = raw.decode(encoding)
    except UnicodeDecodeError:
        return None
    return decoded if _chinese(decoded) else None


def _utf8_read_as_gbk(text_: str) -> str | None:
    """What UTF-8 text wrongly decoded as GBK should have been (GBK loses a byte here and
    there, so a few replacement characters are tolerated), or None."""
    if not _has_cjk(text_):
        return None
    decoded = text_.encode("gbk", errors="replace").decode("utf-8", errors="replace")
    if decoded == text_ or not _chinese(decoded):
        return None
    if decoded.count("\ufffd") * 4 <= len(decoded):
        return decoded
    # A short name: GDAL drops the odd last byte of a 3-character name's 9 UTF-8 bytes, so
    # "长江路" comes back as "长江\ufffd" — one replacement in three. Accepted when all the
    # rest is Chinese (checked on 300,000 random GB2312 strings: no correct text matched).
    body = decoded[:-1] if decoded.endswith("\ufffd") else decoded
    cjk = sum("\u4e00" <= ch <= "\u9fff" for ch in body)
    return decoded if "\ufffd" not in body and cjk >= 2 and cjk == len(body) else None


def garbled(values: list[str]) -> str | None:
    """Why the text looks like mojibake (Chinese message), or None.

    Judged on the values with non-ASCII characters: a value is garbled when it holds
    replacement characters, or is UTF-8 or GBK bytes read as Latin-1 (`äººæ°`, `ÈËÃñ`), or
    UTF-8 bytes read as GBK (`浜烘皯`). Half of them garbled condemns the file."""
    suspects = [t for t in values if not t.isascii()]
    if not suspects:
        return None
    half = max(1, (len(suspects) + 1) // 2)
    broken = [t for t in suspects if "\ufffd" in t]
    if len(broken) >= half:
        return (
            f"属性文字无法解码（含替换字符，如 {broken[0]!r}）：文件编码与声明不符，"
            "请用 --encoding 指定（中文 Shapefile 多为 GBK）"
        )
    raws = [(t, _latin1_bytes(t)) for t in suspects]
    utf8 = [(t, _as(raw, "utf-8")) for t, raw in raws if _as(raw, "utf-8")]
    if len(utf8) >= half:
        return (
            f"属性文字是乱码：UTF-8 编码的中文被当作 Latin-1 读取（如 {utf8[0][0]!r}，"
            f"应为 {utf8[0][1]!r}），请加 --encoding UTF-8 重新导入"
        )
    gbk = [(t, _as(raw, "gbk")) for t, raw in raws if _as(raw, "gbk")]
    if len(gbk) >= half:
        return (
            f"属性文字是乱码：GBK 编码的中文被当作 Latin-1 读取（如 {gbk[0][0]!r}，"
            f"应为 {gbk[0][1]!r}），请加 --encoding GBK 重新导入"
        )
    wrong = [(t, _utf8_read_as_gbk(t)) for t in suspects]
    wrong = [(t, d) for t, d in wrong if d]
    if len(wrong) >= half:
        return (
            f"属性文字是乱码：UTF-8 编码的中文被当作 GBK 读取（如 {wrong[0][0]!r}，"
            f"应为 {wrong[0][1]!r}），请改用 --encoding UTF-8（或去掉 --encoding GBK）重新导入"
        )
    return None


def garbled_value(text_: Any) -> str | None:
    """Why one text value looks like mojibake (Chinese), or None. A file may pass `garbled`
    as a whole and still hold a few rows typed in the other encoding (files merged from two
    systems); those rows are refused one by one."""
    if not isinstance(text_, str) or text_.isascii():
        return None
    if "\ufffd" in text_:
        return f"{text_!r} 含无法解码的字符"
    raw = _latin1_bytes(text_)
    for encoding, title in (("utf-8", "UTF-8"), ("gbk", "GBK")):
        right = _as(raw, encoding)
        if right:
            return f"{text_!r} 像是 {title} 编码的中文被当作 Latin-1 读取（应为 {right!r}）"
    right = _utf8_read_as_gbk(text_)
    if right:
        return f"{text_!r} 像是 UTF-8 编码的中文被当作 GBK 读取（应为 {right!r}）"
    return None


def garbled_problem(properties: Mapping[str, Any], keys: Iterable[str]) -> Problem | None:
    """The first of `keys` whose value looks like mojibake, as a Problem."""
    for key in keys:
        why = garbled_value(properties.get(key))
        if why:
            return Problem(
                f"属性 {key} 疑似乱码：{why}；文件中可能混用了 GBK 与 UTF-8 编码，"
                "请在源文件中改正后重新导入",
                f"properties.{key}",
            )
    return None


def _looks_garbled(values: list[str]) -> bool:
    return garbled(values) is not None
