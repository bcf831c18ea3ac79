// The customer order-tracking page: asks for the match fields, shows only what the server returns.
const [, , tenant, slug] = location.pathname.split("/");
const api = `/api/v1/public/${encodeURIComponent(tenant)}/${encodeURIComponent(slug)}`;
const $ = (id) => document.getElementById(id);
const text = (label) => (label && typeof label === "object" ? label["zh-CN"] || label.en || Object.values(label)[0] : label) || "";
let timer = null;

function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const c of children) node.append(c);
  return node;
}

function countdown(node, iso) {
  const target = new Date(iso.length <= 10 ? iso + "T23:59:59+08:00" : iso).getTime();
  const tick = () => {
    const ms = target - Date.now();
    if (ms <= 0) { node.textContent = "已到预计送达时间"; return; }
    const d = Math.floor(ms / 86400000), h = Math.floor(ms % 86400000 / 3600000), m = Math.floor(ms % 3600000 / 60000);
    node.textContent = `还剩 ${d} 天 ${h} 小时 ${m} 分`;
  };
  tick();
  clearInterval(timer);
  timer = setInterval(tick, 30000);
}

async function init() {
  const resp = await fetch(api);
  if (!resp.ok) { $("error").textContent = "页面不存在"; $("go").disabled = true; return; }
  const page = await resp.json();
  $("title").textContent = text(page.title) || "订单追踪";
  document.title = $("title").textContent;
  $("intro").textContent = text(page.intro);
  for (const m of page.match) {
    const id = `f-${m.field}`;
    $("inputs").append(el("label", { htmlFor: id, textContent: text(m.label) }),
                       el("input", { id, name: m.field, required: true, autocomplete: "off", inputMode: /phone|tel/.test(m.field) ? "tel" : "text" }));
  }
}

$("lookup").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("error").textContent = "";
  const values = Object.fromEntries(new FormData(ev.target).entries());
  const resp = await fetch(`${api}/lookup`, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ values }) });
  const body = await resp.json();
  if (!resp.ok) {
    $("result").hidden = true;
    $("error").textContent = resp.status === 404 ? "未找到匹配的订单,请核对手机号和订单号" : (body.error && body.error.message_zh) || "查询失败";
    return;
  }
  const dl = $("fields");
  dl.replaceChildren();
  for (const f of body.fields) {
    const dd = el("dd", { textContent: f.value == null ? "—" : String(f.value) });
    if (f.countdown && f.value) { dd.className = "countdown"; countdown(dd, String(f.value)); }
    dl.append(el("dt", { textContent: text(f.label) }), dd);
  }
  $("timeline").replaceChildren(...body.timeline.map((t) => el("li", {}, [String(t.value ?? ""), el("small", { textContent: t.at.replace("T", " ").slice(0, 16) })])));
  $("related").replaceChildren(...body.related.map((r) => el("div", {}, [el("h2", { textContent: text(r.label) }),
    ...r.rows.map((row) => el("div", { className: "event" }, Object.values(row).map((v, i) => i === 0 ? el("small", { textContent: String(v ?? "") }) : ` ${v ?? ""}`)))])));
  $("result").hidden = false;
});

init();
