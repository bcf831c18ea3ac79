"""Sample data for the order hub (订单中枢): a realistic multi-channel shop.

generate(ctx) creates warehouses (华东仓, 华南仓, 义乌仓, 杭州仓, Shopee 本地仓, 海外合作仓,
临时仓 and a store), products across categories (连体衣, 冻品, 家居...), stock per warehouse,
routing and gift rules, customers, ``ctx.size`` orders (default 10,000) across every channel
and status spread over the last 90 days, returns and logistics events.

Deterministic: everything comes from ``ctx.random`` (seeded by the installer from the
template name and size). Consistent as if the automations had run: order totals are the sums
of their items, gifts follow the gift tiers, stock is reserved for open orders and converted
for shipped ones (available = on hand − reserved − samples, never negative).

Fast: rows are generated in memory, inserted in batches through the records service's bulk
path (``create_many``) with no write hooks — historical rows must not send messages, arm SLA
timers or reserve stock again — and the computed fields of every table are then recomputed
in bulk, in dependency order (``recompute_tables``), instead of once per row and relation.
"""
from __future__ import annotations

import hashlib
from datetime import timedelta

CHANNELS = [("天猫", 24), ("拼多多", 16), ("抖音", 20), ("小程序", 12), ("Shopify", 6), ("Amazon", 5), ("Shopee", 7), ("POS", 5), ("分销API", 5)]
SHOPS = {"天猫": ["天猫旗舰店", "天猫童装店"], "抖音": ["抖音主号", "抖音童装号"], "拼多多": ["拼多多店"]}
WAREHOUSES = [
    ("HD", "华东仓", "自营仓", "华东", 31.23, 121.47, 3000),
    ("HN", "华南仓", "自营仓", "华南", 23.13, 113.26, 2500),
    ("YW", "义乌仓", "自营仓", "全国", 29.31, 120.07, 4000),
    ("HZ", "杭州仓", "自营仓", "抖音连体衣", 30.27, 120.15, 2000),
    ("SHOPEE", "Shopee本地仓", "平台本地仓", "东南亚", 1.35, 103.82, 800),
    ("OVS", "海外合作仓", "海外合作仓", "欧美", 51.5, -0.12, 500),
    ("TMP", "临时仓", "临时仓", "应急", 30.0, 120.0, 5000),
    ("XH", "西湖门店", "门店", "杭州西湖", 30.259, 120.130, 200),
]
CATALOGUE = {
    "连体衣": (["婴儿连体衣", "新生儿爬服", "棉质哈衣", "加厚连体衣", "卡通连体衣"], 0.3, "轻小件", (69, 199)),
    "童装": (["儿童卫衣", "童装外套", "儿童牛仔裤", "女童连衣裙"], 0.5, "轻小件", (59, 259)),
    "冻品": (["冷冻牛排", "黑虎虾", "三文鱼块", "速冻水饺", "羊肉卷"], 1.5, "标准件", (39, 399)),
    "零食": (["坚果礼盒", "牛肉干", "果干拼盘"], 0.8, "轻小件", (29, 159)),
    "家居": (["布艺沙发", "实木餐桌", "落地灯", "收纳柜"], 25.0, "大件", (299, 3999)),
    "女装": (["真丝衬衫", "羊毛大衣", "针织开衫", "阔腿裤"], 0.6, "轻小件", (99, 899)),
    "配件": (["丝巾", "帆布包", "发夹套装"], 0.2, "轻小件", (19, 199)),
}
GIFTS = [("BAG", "保温袋"), ("TASTE", "试吃装"), ("FUDAI", "新年福袋")]
PROVINCES = [("浙江", "杭州市"), ("上海", "上海市"), ("江苏", "南京市"), ("广东", "深圳市"), ("广东", "广州市"), ("北京", "北京市"),
             ("四川", "成都市"), ("湖北", "武汉市"), ("福建", "厦门市"), ("山东", "青岛市"), ("新疆", "乌鲁木齐市"), ("西藏", "拉萨市")]
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "华", "慧"]
CARRIERS = ["顺丰", "中通", "圆通", "韵达", "申通", "京东", "EMS"]
RETURN_REASONS = [("七天无理由", 30), ("颜色不符", 18), ("尺码不合适", 18), ("质量问题", 14), ("包装破损", 10), ("发错货", 5), ("其他", 5)]


def _bulk(records):
    """The same transaction's records service without write hooks: no rules, no per-row
    computed-field propagation (recomputed in bulk at the end)."""
    from zhongshu.platform.storage.records import Hooks, Records

    return Records(records.session, tenant_id=records.tenant_id, actor=records.actor, ctx=records.ctx, cache=records.cache,
                   hooks=Hooks())


def _insert(ctx, table: str, rows: list[dict], *, batch: int = 1000, parent_ids: list | None = None) -> list[int]:
    """Batched inserts through Records.create_many (validated like the API); returns the ids."""
    schema = ctx.records.schema(table)
    ids: list[int] = []
    for i in range(0, len(rows), batch):
        ids.extend(ctx.records.create_many(schema, rows[i:i + batch], pointer=f"/{table}", return_records=False,
                                           parent_ids=parent_ids[i:i + batch] if parent_ids is not None else None))
    ctx.counts[table] = ctx.counts.get(table, 0) + len(rows)
    return ids


def _weighted(rnd, pairs):
    total = sum(w for _, w in pairs)
    x = rnd.uniform(0, total)
    for v, w in pairs:
        x -= w
        if x <= 0:
            return v
    return pairs[-1][0]


def _ts(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


OPEN = ("待付款", "已付款", "备货中", "异常中", "待人工核查")      # stock reserved
SHIPPED = ("已发货", "已完成", "已退货")                          # stock converted to shipped
GIFT_TIERS = [(299, "BAG", "保温袋"), (599, "TASTE", "试吃装")]


def generate(ctx):
    from zhongshu.runtime.computed import recompute_tables

    rnd, now = ctx.random, ctx.now
    ctx.records = _bulk(ctx.records)
    n_orders = max(int(ctx.size), 1)

    # warehouses -----------------------------------------------------------------------
    wh_ids = dict(zip([w[0] for w in WAREHOUSES], _insert(ctx, "warehouses", [
        {"code": c, "name": n, "kind": k, "region_served": r, "lat": la, "lng": ln, "max_daily_orders": cap, "enabled": True}
        for c, n, k, r, la, ln, cap in WAREHOUSES])))

    # products -------------------------------------------------------------------------
    products = []
    for cat, (names, weight, size_class, (lo, hi)) in CATALOGUE.items():
        for name in names:
            products.append({"sku": f"SKU-{len(products) + 1:04d}", "name": name, "category": cat,
                             "weight": round(weight * rnd.uniform(0.7, 1.3), 3), "size_class": size_class,
                             "price": rnd.randrange(lo, hi), "shelf_life_days": 180 if cat == "冻品" else None,
                             "low_stock_action": rnd.choice(["仅提醒", "仅提醒", "下架", "转预售"])})
    for sku, name in GIFTS:
        products.append({"sku": sku, "name": name, "category": "赠品", "weight": 0.1, "size_class": "轻小件", "price": 0})
    pr_ids = dict(zip([p["sku"] for p in products], _insert(ctx, "products", products)))
    by_sku = {p["sku"]: p for p in products}
    sellable = [p for p in products if p["category"] != "赠品"]

    # routing and gift rules ---------------------------------------------------------------
    _insert(ctx, "routing_rules", [
        {"name": "抖音连体衣→杭州仓", "priority": 1, "channel": "抖音", "category": "连体衣", "warehouse": wh_ids["HZ"]},
        {"name": "东南亚轻小件→Shopee本地仓", "priority": 2, "zone": "东南亚", "parcel_class": "轻小件", "warehouse": wh_ids["SHOPEE"]},
        {"name": "欧美大件→海外合作仓", "priority": 3, "zone": "欧美", "parcel_class": "大件", "warehouse": wh_ids["OVS"]},
        {"name": "华东→华东仓", "priority": 10, "zone": "国内", "provinces": "上海,浙江,江苏,安徽", "warehouse": wh_ids["HD"]},
        {"name": "华南→华南仓", "priority": 11, "zone": "国内", "provinces": "广东,广西,福建,海南", "warehouse": wh_ids["HN"]},
        {"name": "国内其他→义乌仓", "priority": 100, "zone": "国内", "warehouse": wh_ids["YW"]},
    ])
    year = now.year
    _insert(ctx, "gift_rules", [
        {"name": "满299送保温袋", "kind": "满额赠", "threshold": 299, "gift_sku": "BAG", "gift_name": "保温袋",
         "valid_from": f"{year}-01-01 00:00", "valid_to": f"{year}-12-31 23:59", "rule_version": f"{year}-v1"},
        {"name": "满599加赠试吃装", "kind": "满额赠", "threshold": 599, "gift_sku": "TASTE", "gift_name": "试吃装",
         "valid_from": f"{year}-01-01 00:00", "valid_to": f"{year}-12-31 23:59", "rule_version": f"{year}-v1"},
        {"name": "抖音新年福袋", "kind": "指定商品赠", "trigger_sku": sellable[0]["sku"], "channel": "抖音", "gift_sku": "FUDAI",
         "gift_name": "新年福袋", "valid_from": f"{year}-12-01 00:00", "valid_to": f"{year + 1}-02-28 23:59", "rule_version": "dy-ny"},
    ])

    # customers --------------------------------------------------------------------------------
    n_customers = max(20, n_orders // 8)
    customers = []
    for _ in range(n_customers):
        prov, city = rnd.choice(PROVINCES)
        customers.append({"name": rnd.choice(SURNAMES) + rnd.choice(GIVEN), "phone": f"1{rnd.choice('3589')}{rnd.randrange(10**8, 10**9)}",
                          "level": "VIP" if rnd.random() < 0.08 else "普通", "region": prov,
                          "address": {"province": prov, "city": city, "detail": f"{rnd.randrange(1, 999)} 号"},
                          "payment_preference": "货到付款" if rnd.random() < 0.1 else "在线支付"})
    cu_ids = _insert(ctx, "customers", customers)

    # orders, as the automations would have left them -------------------------------------------------
    rows, lines_of, meta = [], [], []
    reserved: dict = {}   # (warehouse, sku) -> units reserved by open orders
    shipped_units: dict = {}  # (warehouse, sku) -> units shipped
    for i in range(n_orders):
        ci = rnd.randrange(n_customers)
        cust = customers[ci]
        channel = _weighted(rnd, CHANNELS)
        zone = "东南亚" if channel == "Shopee" else ("欧美" if channel in ("Amazon", "Shopify") and rnd.random() < 0.7 else "国内")
        created = now - timedelta(days=rnd.uniform(0, 90) ** 1.15 / 90 ** 0.15, minutes=rnd.randrange(0, 60))
        age_h = (now - created).total_seconds() / 3600
        lines = []
        for _ in range(rnd.choice([1, 1, 1, 2, 2, 3])):
            p = rnd.choice(sellable)
            lines.append({"sku": p["sku"], "product": pr_ids[p["sku"]], "qty": rnd.choice([1, 1, 1, 2, 3]), "unit_price": p["price"]})
        due = sum(l["qty"] * l["unit_price"] for l in lines)
        discount = round(due * rnd.choice([0, 0, 0.05, 0.1]), 2)
        # status by age: old orders are finished, fresh ones are still moving
        if age_h < 0.5:
            status = rnd.choice(["待付款", "已付款", "已付款"])
        elif age_h < 24:
            status = _weighted(rnd, [("已付款", 20), ("备货中", 30), ("已发货", 40), ("已取消", 5), ("异常中", 3), ("待人工核查", 2)])
        elif age_h < 24 * 7:
            status = _weighted(rnd, [("已发货", 55), ("已完成", 35), ("已取消", 5), ("已退货", 3), ("异常中", 2)])
        else:
            status = _weighted(rnd, [("已完成", 85), ("已取消", 6), ("已退货", 8), ("异常中", 1)])
        paid = status not in ("待付款", "已取消") or (status == "已取消" and rnd.random() < 0.3)
        cod = cust["payment_preference"] == "货到付款" and zone == "国内"
        prov = cust["address"]["province"] if zone == "国内" else ""
        wh = ("HZ" if channel == "抖音" and any(by_sku[l["sku"]]["category"] == "连体衣" for l in lines) else
              "SHOPEE" if zone == "东南亚" else "OVS" if zone == "欧美" else
              "HD" if prov in ("上海", "浙江", "江苏") else "HN" if prov in ("广东", "福建") else
              "TMP" if rnd.random() < 0.02 else "YW")
        pay_time = created + timedelta(seconds=rnd.randrange(20, 900)) if paid else None
        amount_paid = round(due - discount, 2) if paid else None
        external_id = f"{channel[:2]}-{100000 + i}"
        row = {"channel": channel, "shop": rnd.choice(SHOPS.get(channel, [channel + "店"])),
               "external_id": external_id, "global_id": hashlib.sha256(f"{channel}:{external_id}".encode()).hexdigest(),
               "customer": cu_ids[ci],
               "receiver_name": cust["name"], "receiver_phone": cust["phone"], "address": cust["address"] if zone == "国内" else {"detail": "overseas"},
               "ship_zone": zone, "amount_due": due, "discount": discount,
               "amount_paid": amount_paid, "payment_method": "货到付款" if cod else "在线支付",
               "pay_time": _ts(pay_time) if pay_time else None, "warehouse": wh_ids[wh], "route_note": "示例数据",
               "status": status, "created": _ts(created), "status_changed_at": _ts(created + timedelta(hours=min(age_h, rnd.uniform(0.2, 30)))),
               "vip_rush": cust["level"] == "VIP", "remarks": rnd.choice([None, None, None, "请尽快发货", "送礼, 不要放发票", "周末送货"]),
               "platform_fee": round(due * (0.05 if channel in ("天猫", "抖音") else 0.03), 2), "shipping_cost": rnd.choice([6, 8, 10, 12, 18, 45]),
               "tax": round(due * (0.06 if zone != "国内" else 0.0), 2), "stage": None}
        # gift tiers (automation 4) by the paid amount, as zero-priced gift lines
        if amount_paid and created.year == year:
            gifts = [(sku, name) for threshold, sku, name in GIFT_TIERS if amount_paid >= threshold]
            for sku, _name in gifts:
                lines.append({"sku": sku, "product": pr_ids[sku], "qty": 1, "unit_price": 0, "is_gift": True})
            row["gifts_applied"] = True
            if gifts:
                row["promo_version"] = f"{year}-v1"
        if pay_time:
            row["paid_visible_at"] = _ts(pay_time + timedelta(seconds=rnd.choice([3, 5, 8, 12, 20, 45, 120])))
        shipped = None
        if status == "备货中":
            row["picked_at"] = _ts(created + timedelta(minutes=rnd.uniform(20, 120)))
        if status in SHIPPED:
            shipped = created + timedelta(hours=rnd.uniform(1, 20))
            row.update({"tracking_no": f"{rnd.choice(['SF', 'ZT', 'YT', 'YD'])}{rnd.randrange(10**11, 10**12)}", "carrier": rnd.choice(CARRIERS),
                        "waybill_printed": True, "address_locked": True, "picked_at": _ts(shipped - timedelta(minutes=30)),
                        "shipped_at": _ts(shipped), "estimated_delivery": _ts(shipped + timedelta(days=3 if zone == "国内" else 10)),
                        "stock_converted": True, "last_logistics_at": _ts(shipped)})
            for line in lines:
                line["shipped_qty"] = line["qty"] if line.get("is_gift") or rnd.random() > 0.004 else line["qty"] - 1
            if status != "已发货":
                row["signed_at"] = _ts(shipped + timedelta(days=rnd.uniform(1, 4.5 if zone == "国内" else 12)))
                row["last_logistics_at"] = row["signed_at"]
        if status == "已取消":
            row["stock_released"] = True
            row["cancel_reason"] = "超时未付款, 已释放库存" if not paid else "买家取消"
        if status in ("异常中", "待人工核查"):
            row["risk_reason"] = rnd.choice(["地址不完整", "同一买家短时多单", "库存不足"])
        row["stage"] = {"已付款": "待处理", "备货中": "已打单", "已发货": "已发货", "已完成": "已发货", "异常中": "异常拦截", "待人工核查": "异常拦截"}.get(status)
        # a few disagreements between the touchpoints for the consistency report
        row["channel_status"] = status if rnd.random() > 0.01 else "已付款"
        row["warehouse_status"] = status if rnd.random() > 0.01 else "备货中"
        # the stock the automations would have moved (9): reserve on order, convert on ship
        for line in lines:
            if line.get("is_gift"):
                continue
            key = (wh, line["sku"])
            if status in OPEN:
                reserved[key] = reserved.get(key, 0) + line["qty"]
            elif status in SHIPPED:
                shipped_units[key] = shipped_units.get(key, 0) + line["shipped_qty"]
        rows.append(row)
        lines_of.append(lines)
        meta.append((status, shipped, row))
    order_ids = _insert(ctx, "orders", rows)
    items, parents = [], []
    for oid, lines in zip(order_ids, lines_of):
        for pos, line in enumerate(lines):
            items.append(line)
            parents.append((oid, pos))
    _insert(ctx, "orders_items", items, batch=2000, parent_ids=parents)

    # stock: what is left after the orders, plus a few rows below their safety threshold ---------
    inv = []
    for code, *_ in WAREHOUSES:
        for p in products:
            if code == "XH" and p["category"] not in ("连体衣", "童装"):
                continue
            key = (code, p["sku"])
            threshold = rnd.choice([3, 5, 10])
            left = rnd.randrange(0, threshold + 1) if rnd.random() < 0.04 else (
                rnd.randrange(5, 40) if code == "XH" else rnd.randrange(30, 800))
            samples = rnd.choice([0, 0, 0, 1, 2])
            inv.append({"warehouse_code": code, "sku": p["sku"], "warehouse": wh_ids[code], "product": pr_ids[p["sku"]],
                        "on_hand": left + reserved.get(key, 0) + samples, "reserved": reserved.get(key, 0),
                        "shipped": shipped_units.get(key, 0), "samples": samples, "safety_threshold": threshold,
                        "synced_at": _ts(now - timedelta(minutes=rnd.randrange(1, 15)))})
    _insert(ctx, "inventory", inv)

    # returns and logistics events -------------------------------------------------------------
    returns, events = [], []
    for oid, lines, (status, shipped, row) in zip(order_ids, lines_of, meta):
        if shipped is not None:
            t = shipped
            for kind, text in (("揽收", "快递员已揽收"), ("运输中", "已到达转运中心"), ("派送中", "快递员正在派送")):
                t = t + timedelta(hours=rnd.uniform(2, 20))
                events.append({"order": oid, "tracking_no": row["tracking_no"], "carrier": row["carrier"], "time": _ts(t),
                               "kind": kind, "status_text": text, "location": row["address"].get("city") or "海外"})
            if row.get("signed_at"):
                events.append({"order": oid, "tracking_no": row["tracking_no"], "carrier": row["carrier"], "time": row["signed_at"],
                               "kind": "签收", "status_text": "已签收, 签收人: 本人", "location": row["address"].get("city") or "海外"})
        if status == "已退货" or (status == "已完成" and rnd.random() < 0.06):
            line = rnd.choice([l for l in lines if not l.get("is_gift")])
            rstatus = "已退款" if status == "已退货" else rnd.choice(["待审核", "退货中", "已收货", "已完成", "已拒绝"])
            requested = shipped + timedelta(days=rnd.uniform(2, 7))
            returns.append({"order": oid, "product": line["product"], "qty": 1, "type": rnd.choice(["退货", "退货", "换货", "仅退款"]),
                            "reason": _weighted(rnd, RETURN_REASONS), "requested_at": _ts(requested), "status": rstatus,
                            "refund_amount": line["unit_price"] if rstatus in ("已退款", "已完成") else None,
                            "priority": rnd.choice(["高", "中", "中", "低"]),
                            "qc_result": rnd.choice(["合格", "合格", "不合格"]) if rstatus in ("已收货", "已退款", "已完成") else "待质检",
                            "closed_at": _ts(requested + timedelta(hours=rnd.uniform(4, 72))) if rstatus in ("已退款", "已完成", "已拒绝") else None})
    _insert(ctx, "returns", returns)
    _insert(ctx, "logistics_events", events, batch=2000)

    # computed fields of every table, in bulk and in dependency order (items, orders, returns, customers...)
    names = ["warehouses", "products", "inventory", "routing_rules", "gift_rules", "customers", "orders_items", "orders",
             "returns", "logistics_events"]
    recompute_tables(ctx.records, [ctx.records.schema(n) for n in names], batch=1000)
    return {"orders": len(order_ids), "customers": n_customers, "products": len(products), "returns": len(returns),
            "logistics_events": len(events)}
