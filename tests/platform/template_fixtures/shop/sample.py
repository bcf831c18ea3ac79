"""Sample data of the test template: products, customers and orders with items."""


def generate(ctx):
    products = ctx.insert("products", [{"sku": f"SKU{i}", "title": f"商品{i}", "price": 10 * (i + 1)} for i in range(3)])
    customers = ctx.insert("customers", [{"name": f"客户{i}", "level": ctx.random.choice(["普通", "VIP"])} for i in range(ctx.size)])
    rows = []
    for i in range(ctx.size * 2):
        rows.append({"customer": ctx.random.choice(customers), "amount": 100 + i, "phone": f"1380000{i:04d}",
                     "items": [{"product": ctx.random.choice(products), "qty": 2}]})
    ctx.insert("orders", rows)
    ctx.log(f"{len(rows)} orders")
