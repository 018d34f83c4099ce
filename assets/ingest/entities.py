"""Synthetic entity (company) profiles with planted industries, for "similar entities".

Descriptions are Chinese sentences assembled from industry vocabulary plus generic business words
(and some noise from other industries), so text similarity carries the industry signal but not
perfectly; location correlates weakly with industry, type and tags are partly informative.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from assets.ingest.loaders import IdMapping

INDUSTRIES = {
    "金融": ["银行", "贷款", "理财", "保险", "证券", "基金", "信用卡", "投资", "支付", "资产"],
    "医疗": ["医院", "药品", "诊所", "医生", "治疗", "健康", "疫苗", "医疗器械", "护理", "体检"],
    "教育": ["学校", "课程", "培训", "老师", "学生", "考试", "教材", "辅导", "在线教育", "留学"],
    "制造": ["工厂", "生产线", "机械", "零部件", "加工", "设备", "模具", "钢材", "装配", "质检"],
    "零售": ["商场", "超市", "门店", "商品", "促销", "会员", "电商", "物流", "库存", "购物"],
    "科技": ["软件", "芯片", "云计算", "人工智能", "数据", "算法", "互联网", "平台", "研发", "服务器"],
    "餐饮": ["餐厅", "菜品", "外卖", "厨师", "火锅", "咖啡", "食材", "连锁", "烘焙", "饮品"],
    "地产": ["房地产", "楼盘", "物业", "住宅", "开发商", "租赁", "商铺", "装修", "土地", "中介"],
}
GENERIC = [
    "公司",
    "提供",
    "专业",
    "客户",
    "服务",
    "领先",
    "企业",
    "品牌",
    "市场",
    "团队",
    "产品",
    "发展",
    "合作",
    "优质",
]
PROVINCES = ["北京", "上海", "广东", "浙江", "江苏", "四川", "湖北", "山东"]
TYPES = ["国企", "民营", "外资"]
TAGS = ["上市", "高新技术", "小微", "独角兽", "老字号", "出口"]


def generate_profiles(n: int = 2000, seed: int = 5, noise: float = 0.25) -> pd.DataFrame:
    """Synthetic company profiles with planted industries (the truth similar-entity search is scored on).

    Parameters
    ----------
    n : int
        Profiles.
    seed : int
    noise : float
        Share of each description's words drawn from other industries' vocabulary.

    Returns
    -------
    DataFrame
        ``entity_id``, ``name``, ``description``, ``location``, ``type``, ``tags`` (list) and
        ``industry`` (the planted truth).
    """
    rng = np.random.default_rng(seed)
    inds = list(INDUSTRIES)
    ind = rng.integers(0, len(inds), n)
    rows = []
    for i, k in enumerate(ind):
        own = INDUSTRIES[inds[k]]
        words = list(rng.choice(own, rng.integers(3, 6))) + list(rng.choice(GENERIC, rng.integers(3, 6)))
        if rng.random() < noise:
            other = INDUSTRIES[inds[rng.integers(len(inds))]]
            words += list(rng.choice(other, 2))
        rng.shuffle(words)
        loc = PROVINCES[k % len(PROVINCES)] if rng.random() < 0.4 else PROVINCES[rng.integers(len(PROVINCES))]
        tags = sorted(
            set(
                rng.choice(TAGS, rng.integers(0, 3)).tolist()
                + ([TAGS[k % len(TAGS)]] if rng.random() < 0.3 else [])
            )
        )
        rows.append(
            {
                "entity_id": i,
                "name": f"企业{i:05d}",
                "description": "，".join(words) + "。",
                "location": loc,
                "type": TYPES[rng.integers(len(TYPES))],
                "tags": tags,
                "industry": inds[k],
            }
        )
    return pd.DataFrame(rows)


def load_profiles_file(path: str, id_mapping: IdMapping = "none") -> pd.DataFrame:
    """Entity profiles from CSV, Parquet or JSON lines: ``entity_id``, ``description`` (required),
    ``name``, ``location``, ``type``, ``tags`` (list, or ``a|b`` / JSON text), ``industry`` if present.

    With ``id_mapping="stable_hash"`` string ids map to stable int64 and the original id is kept
    in ``external_id``. Unreadable or mistyped files raise ``InputError`` naming the row.
    """
    from assets.ingest.loaders import has_header, int_ids, read_table, require_columns, text_lists

    df = read_table(path)
    df.columns = [str(c).strip().lower() for c in df.columns]
    require_columns(df, ["entity_id", "description"], path)
    ids, _ = int_ids(df["entity_id"], "entity_id", path, id_mapping, has_header(path))
    out = pd.DataFrame({"entity_id": ids})
    if id_mapping == "stable_hash":
        out["external_id"] = df["entity_id"].astype(str).str.strip().to_numpy()
    for col in ("name", "description", "location", "type"):
        out[col] = (
            df[col]
            .map(lambda v: None if v is None or (isinstance(v, float) and np.isnan(v)) else str(v))
            .to_numpy()
            if col in df.columns
            else ""
        )
    out["tags"] = text_lists(df["tags"]).to_numpy() if "tags" in df.columns else [[] for _ in range(len(df))]
    if "industry" in df.columns:
        out["industry"] = df["industry"].astype(str).to_numpy()
    return out
