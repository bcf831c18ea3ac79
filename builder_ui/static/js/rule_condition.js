// A branch's `if` is an expression string. The visual condition tree produces the API's filter
// language, so this module translates a filter into the equivalent expression and reads back
// the expressions it wrote (anything else stays in the expression box).

const pyStr = (v) => "'" + String(v).replace(/\\/g, '\\\\').replace(/'/g, "\\'").replace(/\n/g, '\\n') + "'";
function lit(v) {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return String(v);
  return pyStr(v);
}
const list = (v) => '[' + (Array.isArray(v) ? v : [v]).map(lit).join(', ') + ']';
const CMP = { '=': '==', '!=': '!=', '<': '<', '<=': '<=', '>': '>', '>=': '>=', before: '<', after: '>' };
const UNITS = { minute: 1, minutes: 1, m: 1, hour: 60, hours: 60, h: 60, day: 1440, days: 1440, d: 1440, week: 10080, weeks: 10080, w: 10080,
  '分钟': 1, '小时': 60, '天': 1440, '周': 10080 };
// '2 hours' -> 120 (the filter language's durations, in minutes)
function minutes(v) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z\u4e00-\u9fff]+)\s*$/.exec(String(v ?? '').toLowerCase());
  if (!m || !UNITS[m[2]]) throw new Error('not a duration: ' + v);
  return Number(m[1]) * UNITS[m[2]];
}

function condToExpr(c) {
  const f = c.field, v = c.value;
  if (CMP[c.op]) return `${f} ${CMP[c.op]} ${lit(v)}`;
  switch (c.op) {
    case 'in': return `${f} in ${list(v)}`;
    case 'not_in': return `${f} not in ${list(v)}`;
    case 'contains': return `CONTAINS(${f}, ${lit(v)})`;
    case 'not_contains': return `not CONTAINS(${f}, ${lit(v)})`;
    case 'starts_with': return `LEFT(${f}, ${[...String(v ?? '')].length}) == ${lit(v)}`;
    case 'ends_with': return `RIGHT(${f}, ${[...String(v ?? '')].length}) == ${lit(v)}`;
    case 'older_than': return `MINUTES_BETWEEN(${f}, NOW()) > ${minutes(v)}`;
    case 'within_last': return `MINUTES_BETWEEN(${f}, NOW()) <= ${minutes(v)}`;
    case 'is_empty': return `ISBLANK(${f})`;
    case 'is_not_empty': return `not ISBLANK(${f})`;
    case 'today': return `DATEDIF(${f}, TODAY()) == 0`;
    case 'between': return `${lit((v || [])[0])} <= ${f} <= ${lit((v || [])[1])}`;
    case 'has_any': case 'has_all': {
      const parts = (Array.isArray(v) ? v : [v]).map((x) => `CONTAINS(${f}, ${lit(x)})`);
      return parts.length > 1 ? '(' + parts.join(c.op === 'has_any' ? ' or ' : ' and ') + ')' : parts[0];
    }
    default: throw new Error('operator ' + c.op);
  }
}

// filter (as built by fromTree) -> expression source
export function filterToExpr(node, top = true) {
  if (!node) return '';
  const items = node.and || node.or;
  if (!items) return condToExpr(node);
  const parts = items.map((x) => filterToExpr(x, false));
  const s = parts.join(node.and ? ' and ' : ' or ');
  return top || parts.length < 2 ? s : `(${s})`;
}

// -- reading back ----------------------------------------------------------------------------
const TOKEN = /\s*(?:(\d+(?:\.\d+)?)|('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")|([A-Za-z_][A-Za-z0-9_]*)|(==|!=|<=|>=|<|>|\(|\)|\[|\]|,|-))/y;

function tokenize(src) {
  const out = [];
  TOKEN.lastIndex = 0;
  let pos = 0;
  while (pos < src.length) {
    if (/^\s*$/.test(src.slice(pos))) break;
    TOKEN.lastIndex = pos;
    const m = TOKEN.exec(src);
    if (!m) return null;  // something this reader does not know (dots, arithmetic, comments)
    pos = TOKEN.lastIndex;
    if (m[1] !== undefined) out.push({ k: 'num', v: Number(m[1]) });
    else if (m[2] !== undefined) out.push({ k: 'str', v: m[2].slice(1, -1).replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c)) });
    else if (m[3] !== undefined) out.push({ k: 'name', v: m[3] });
    else out.push({ k: 'op', v: m[4] });
  }
  return out;
}

class Reader {
  constructor(toks, fields) { this.t = toks; this.i = 0; this.fields = fields; }
  peek(o = 0) { return this.t[this.i + o]; }
  is(k, v, o = 0) { const x = this.peek(o); return !!x && x.k === k && (v === undefined || x.v === v); }
  take(k, v) { if (!this.is(k, v)) throw new Error('expected ' + (v || k)); return this.t[this.i++]; }
  field() { const x = this.take('name'); if (!this.fields.has(x.v)) throw new Error('not a field ' + x.v); return x.v; }
  literal() {
    if (this.is('op', '-') && this.is('num', undefined, 1)) { this.i += 2; return -this.t[this.i - 1].v; }
    const x = this.peek();
    if (x && (x.k === 'num' || x.k === 'str')) { this.i++; return x.v; }
    if (x && x.k === 'name' && ['True', 'true', 'TRUE', 'False', 'false', 'FALSE', 'None', 'null'].includes(x.v)) {
      this.i++; return /^t/i.test(x.v) ? true : /^f/i.test(x.v) ? false : null;
    }
    throw new Error('expected a value');
  }
  literals() {
    this.take('op', '['); const out = [];
    while (!this.is('op', ']')) { out.push(this.literal()); if (!this.is('op', ']')) this.take('op', ','); }
    this.take('op', ']'); return out;
  }
  junction(word, next) {
    const items = [next()];
    while (this.is('name', word)) { this.i++; items.push(next()); }
    if (items.length === 1) return items[0];
    return { [word]: items.flatMap((x) => (x[word] ? x[word] : [x])) };
  }
  or() { return this.junction('or', () => this.and()); }
  and() { return this.junction('and', () => this.unary()); }
  unary() {
    if (this.is('name', 'not')) {
      this.i++;
      const c = this.call();
      if (c.op === 'is_empty') return { field: c.field, op: 'is_not_empty' };
      if (c.op === 'contains') return { ...c, op: 'not_contains' };
      throw new Error('not before ' + c.op);
    }
    if (this.is('op', '(')) {
      this.i++; const inner = this.or(); this.take('op', ')');
      // (CONTAINS(f, a) or CONTAINS(f, b)) is how has_any was written
      const items = inner.or || inner.and;
      if (items && items.length > 1 && items.every((x) => x.op === 'contains' && x.field === items[0].field)) {
        return { field: items[0].field, op: inner.or ? 'has_any' : 'has_all', value: items.map((x) => x.value) };
      }
      return inner;
    }
    if (this.is('name') && this.is('op', '(', 1)) return this.call();
    if (!this.is('name') || this.is('name', 'True') || this.is('name', 'False') || this.is('name', 'None')) {  // lo <= f <= hi
      const lo = this.literal(); this.take('op', '<='); const f = this.field(); this.take('op', '<='); const hi = this.literal();
      return { field: f, op: 'between', value: [lo, hi] };
    }
    const f = this.field();
    if (this.is('name', 'in')) { this.i++; return { field: f, op: 'in', value: this.literals() }; }
    if (this.is('name', 'not') && this.is('name', 'in', 1)) { this.i += 2; return { field: f, op: 'not_in', value: this.literals() }; }
    const op = ['=', '!=', '<', '<=', '>', '>='].find((k) => this.is('op', CMP[k]));
    if (!op) throw new Error('expected a comparison');
    this.i++;
    return { field: f, op, value: this.literal() };
  }
  call() {
    const fn = this.take('name').v.toUpperCase();
    this.take('op', '(');
    const f = this.field();
    let c;
    if (fn === 'ISBLANK') { this.take('op', ')'); c = { field: f, op: 'is_empty' }; }
    else if (fn === 'CONTAINS') { this.take('op', ','); c = { field: f, op: 'contains', value: this.literal() }; this.take('op', ')'); }
    else if (fn === 'LEFT' || fn === 'RIGHT') {
      this.take('op', ','); const n = this.take('num').v; this.take('op', ')'); this.take('op', '=='); const v = this.literal();
      if (typeof v !== 'string' || [...v].length !== n) throw new Error(fn);
      c = { field: f, op: fn === 'LEFT' ? 'starts_with' : 'ends_with', value: v };
    } else if (fn === 'MINUTES_BETWEEN') {
      this.take('op', ','); this.take('name', 'NOW'); this.take('op', '('); this.take('op', ')'); this.take('op', ')');
      const op = this.is('op', '>') ? 'older_than' : this.is('op', '<=') ? 'within_last' : null;
      if (!op) throw new Error('MINUTES_BETWEEN');
      this.i++;
      c = { field: f, op, value: `${this.take('num').v} minutes` };
    } else if (fn === 'DATEDIF') {
      this.take('op', ','); this.take('name', 'TODAY'); this.take('op', '('); this.take('op', ')'); this.take('op', ')');
      this.take('op', '=='); if (this.take('num').v !== 0) throw new Error('DATEDIF'); c = { field: f, op: 'today' };
    } else throw new Error('function ' + fn);
    return c;
  }
}

// expression source -> filter, or null when the expression is not one the tree can show
export function exprToFilter(src, table) {
  if (!src || !String(src).trim()) return null;
  const toks = tokenize(String(src));
  if (!toks || !toks.length) return null;
  try {
    const r = new Reader(toks, new Set(((table && table.fields) || []).map((f) => f.api_name)));
    const node = r.or();
    return r.i === toks.length ? node : null;
  } catch (e) { return null; }
}
