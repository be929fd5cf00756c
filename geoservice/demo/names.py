"""The demo county generator: the vocabulary of names."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def _words(text: str) -> list[str]:
    return text.split()


_MAIN_STEMS = _words(
    "人民 解放 建设 黄海 幸福 振阳 开放 新华 青年 胜利 文化 迎宾 世纪 希望 东进 盐渎 范公 串场 "
    "通榆 新洋 海洋 环城 府前 站前 长江 淮河 黄河 珠江 中山 学海 健康 新都 开发 跃进 友谊 和平"
)
_SECONDARY_STEMS = _words(
    "育才 文昌 团结 光明 红旗 东风 朝阳 向阳 工农 民主 公园 体育 学府 园林 鼓楼 钟楼 南门 北门 "
    "西门 东门 新民 利民 惠民 便民 安居 永安 太平 宝塔 文庙 板桥 仓桥 双桥 五星 红星 金桥 银杏 "
    "春晖 丰收 兴盛 长安 东方 南苑 西园 康居 翠竹 龙泉 凤凰 新村 富民 振兴 新兴 繁荣 裕华 洋桥 "
    "河滨 滨湖 湖滨 锦绣 明珠 金港 海韵 晨曦 嘉和 祥和 富康"
)
_LANE_STEMS = _words(
    "文庙 仓 米市 鱼市 盐仓 书院 大井 双井 竹林 桂花 石板 城隍庙 关帝 三元 状元 县前 衙前 牌楼 "
    "糖坊 油坊 染坊 木瓜 杨家 王家 李家 陈家 周家 吴家 孙家 许家 徐家 顾家 沈家 曹家 卞家 薛家 "
    "戴家 蒋家 唐家 梅花 杏花 荷花 柳树 槐树 井 水关 东 西 南 北 后 前 太平 永宁 "
    "积善 仁义 丁字 十字 草 打铁 箍桶 酱园 茶馆 学宫 府 察院 皂角 当铺 银杏 枣树"
)
_STREET_STEMS = _words(
    "新城 新兴 振兴 文峰 新港 海通 望海 南洋 通榆 串场 新洋 大新 五龙 兴桥 沙港 大冈 秦南 龙冈 "
    "尚庄 楼王 学富 伍佑 步凤 新丰 南阳 便仓 小海 白驹 草堰 刘庄 西团 四明 海河 大中 万盈 三龙 "
    "草庙 合德 陈洋 新街 裕华 盘湾 特庸 洋马 黄尖 兴桥 开庄 新沟 永丰 建湖 上冈 宝塔 高作"
)
_COMMUNITY_STEMS = _words(
    "幸福 和平 新华 阳光 文昌 育才 兴盛 长安 东方 南苑 北门 西园 康居 翠竹 龙泉 凤凰 金桥 银杏 "
    "春晖 振阳 迎宾 解放 人民 建设 团结 友谊 青年 胜利 光明 朝阳 东风 红旗 府前 学府 文化 健康 "
    "向阳 聚福 鼓楼 钟楼 南门 西门 东门 新洋 串场 大桥 河滨 滨湖 湖滨 园林 锦绣 丽都 盛世 新城 "
    "开元 永安 太平 宝塔 文庙 板桥 仓桥 双桥 五星 红星 新民 利民 便民 惠民 安居 乐居 怡园 绿苑 "
    "海韵 晨曦 明珠 金港 康乐 嘉和 祥和 富康 鸿福 运河 通榆 黄海 海滨 新港 南湖 北湖 翠湖 莲花 "
    "荷花 梅园 桃园 杏林 松林 柳堤 枫林 樱花 兰亭 紫薇 玉兰 丹桂 东苑 西苑 北苑 中兴 振兴 复兴"
)
_COMPOUND_STEMS = _words(
    "阳光 锦绣 金色 翡翠 碧水 润达 东方 中央 世纪 盛世 名都 凤凰 天鹅湖 香榭 星河 御景 紫金 "
    "金鹰 宝龙 城南 城北 城东 城西 国际 水岸 滨河 湖畔 公园 枫丹 丽景 华庭 银河 明月 清风 "
    "兰香 桂香 荷塘 柳岸 春天 金秋 新天地 未来 蓝湾 绿洲 橄榄 梧桐 海棠 紫荆 牡丹 玫瑰 "
    "书香 学府 文苑 雅居 怡景 欣悦 和美 佳和 康桥 瑞丰 盛泰 安泰 恒大 万和 福瑞 鑫源 "
    "金地 银座 碧桂 新城 龙湖 中南 金科 华邦 润园 悦府"
)
_OLD_WORK_UNITS = _words(
    "粮食局 供销社 化肥厂 棉纺厂 电厂 机械厂 食品站 物资局 邮电局 水利局 税务局 农机厂 酒厂 "
    "纺织厂 印刷厂 五金厂 轧花厂 油脂厂 交通局 卫生局 人武部 气象站 糖烟酒公司 百货公司"
)
_GEN_FIRST = (
    "安宝长昌成达大德东丰福富广海和恒红宏华惠吉嘉建金锦景康乐利隆龙茂民明南鹏平庆瑞润盛胜顺"
    "泰天通旺文祥新兴学阳益永裕元振正中洲春秋翠绿清云星月"
)
_GEN_SECOND = "安昌城达丰福港和河湖华辉佳家居康乐林隆明宁平桥庆泉荣瑞山盛顺泰塘兴阳园源庄苑湾堤"

_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏"
    "魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵"
    "万钱严覃武戴莫孔向汤卞缪仇季"
)
_GIVEN_MALE = (
    "伟强磊军洋勇杰涛明超刚辉建国志斌宇鹏飞浩凯峰亮波海林彬翔博"
    "鑫俊东卫兵荣新忠民德永光庆松文华平宁晨"
)
_GIVEN_FEMALE = "芳娜敏静丽艳娟霞玲红婷雪梅琳燕春慧颖蕾云欣佳晓萍丹瑞楠涵媛秀英兰凤桂珍文华平宁晨"
_PHONE_PREFIXES = _words(
    "130 131 132 133 135 136 137 138 139 150 151 152 153 155 156 157 158 159 "
    "180 181 182 183 185 186 187 188 189 191 193 195 198 199"
)
_CN_DIGITS = "零一二三四五六七八九"


def _cn_number(n: int) -> str:
    """1..99 → 一 … 九十九 (larger numbers in digits)."""
    if n >= 100:
        return str(n)
    if n < 10:
        return _CN_DIGITS[n]
    tens, ones = divmod(n, 10)
    head = "" if tens == 1 else _CN_DIGITS[tens]
    return head + "十" + (_CN_DIGITS[ones] if ones else "")


def _generated_stems() -> list[str]:
    return [a + b for a in _GEN_FIRST for b in _GEN_SECOND if a != b]


class _Names:
    """Draws unique names from a shuffled stem pool (curated stems first, then generated ones).

    `used` is shared between pools so that names are unique across a whole layer family.
    With `cycle=True` the stems are reused (with other suffixes) once exhausted.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        curated: Sequence[str],
        used: set[str],
        cycle: bool = False,
    ) -> None:
        self._rng = rng
        cur = list(dict.fromkeys(curated))
        rng.shuffle(cur)
        seen = set(cur)
        gen = [s for s in _generated_stems() if s not in seen]
        rng.shuffle(gen)
        self._stems = cur + gen
        self._pos = 0
        self._used = used
        self._cycle = cycle

    def _next_stem(self) -> str:
        if self._pos >= len(self._stems):
            if not self._cycle:
                raise RuntimeError("name pool exhausted")
            self._pos = 0
        stem = self._stems[self._pos]
        self._pos += 1
        return stem

    def try_take(self, make: Callable[[str], str]) -> tuple[str, str] | None:
        """Next unused name, or None when every stem is used (non-cycling pools)."""
        for _ in range(2 * len(self._stems)):
            if self._pos >= len(self._stems) and not self._cycle:
                return None
            stem = self._next_stem()
            name = make(stem)
            if name not in self._used:
                self._used.add(name)
                return stem, name
        return None

    def take(self, make: Callable[[str], str]) -> tuple[str, str]:
        got = self.try_take(make)
        if got is None:
            raise RuntimeError("name pool exhausted")
        return got


def _pick(
    rng: np.random.Generator, options: Sequence[str], p: Sequence[float] | None = None
) -> str:
    if p is None:
        return options[int(rng.integers(len(options)))]
    w = np.asarray(p, dtype=float)
    return options[int(rng.choice(len(options), p=w / w.sum()))]
