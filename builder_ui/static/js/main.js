// App shell: login, tenant switcher, navigation, language switch, routing to the screens.
import { html, state, t, setLang, label, api, get, post, go, createApp, msgOf, loadTables, toast, ref } from './lib.js';
import { TableDesigner } from './designer.js';
import { DataScreen } from './grid.js';
import { RulesScreen } from './rules.js';
import { DashboardsScreen } from './dashboards.js';
import { AdminScreen, ApprovalsScreen } from './admin.js';

const Login = {
  setup() {
    const email = ref(''), password = ref(''), error = ref(''), busy = ref(false);
    async function submit(e) {
      e.preventDefault(); error.value = ''; busy.value = true;
      try {
        const d = await api('POST', '/api/v1/auth/login', { email: email.value, password: password.value });
        await afterLogin(d);
      } catch (err) { error.value = msgOf(err); } finally { busy.value = false; }
    }
    return () => html`
      <main class="login">
        <form class="card login-card" onSubmit=${submit} aria-labelledby="login-title">
          <h1 id="login-title">${t('app.title')}</h1>
          <p class="muted">${t('login.subtitle')}</p>
          <label for="login-email">${t('login.email')}</label>
          <input id="login-email" name="email" type="email" autocomplete="username" required
                 value=${email.value} onInput=${(e) => (email.value = e.target.value)} />
          <label for="login-password">${t('login.password')}</label>
          <input id="login-password" name="password" type="password" autocomplete="current-password" required
                 value=${password.value} onInput=${(e) => (password.value = e.target.value)} />
          ${error.value ? html`<div class="field-error" role="alert">${error.value}</div>` : null}
          <button class="primary" type="submit" disabled=${busy.value}>${t('login.submit')}</button>
          <${LangSwitch} />
        </form>
      </main>`;
  },
};

async function afterLogin(d) {
  state.csrf = d.csrf_token; state.user = d.user; state.tenants = d.tenants || [];
  const saved = localStorage.getItem('zs.tenant');
  const tn = state.tenants.find((x) => x.slug === saved) || state.tenants[0];
  await switchTenant(tn ? tn.slug : null);
}

async function switchTenant(slug) {
  state.tenant = slug; state.tables = [];
  if (!slug) return;
  localStorage.setItem('zs.tenant', slug);
  if (!localStorage.getItem('zs.lang')) {
    const tn = state.tenants.find((x) => x.slug === slug);
    if (tn && tn.locale) setLang(tn.locale === 'en' ? 'en' : 'zh-CN');
  }
  try { await loadTables(); } catch (e) { toast(msgOf(e), 'error'); }
}

const LangSwitch = {
  setup() {
    return () => html`
      <div class="lang-switch" role="group" aria-label=${t('nav.language')}>
        <button type="button" class=${state.lang === 'zh-CN' ? 'on' : ''} aria-pressed=${state.lang === 'zh-CN'}
                onClick=${() => setLang('zh-CN')} data-test="lang-zh">中文</button>
        <button type="button" class=${state.lang === 'en' ? 'on' : ''} aria-pressed=${state.lang === 'en'}
                onClick=${() => setLang('en')} data-test="lang-en">English</button>
      </div>`;
  },
};

const NAV = [
  ['home', 'nav.tables'], ['dashboards', 'nav.dashboards'], ['rules', 'nav.rules'],
  ['approvals', 'nav.approvals'], ['admin', 'nav.admin'],
];

const Shell = {
  setup() {
    const menuOpen = ref(false);
    async function logout() {
      try { await post('/api/v1/auth/logout'); } catch (e) { /* already gone */ }
      state.user = null; state.csrf = null;
    }
    return () => {
      const r = state.route;
      const userTables = state.tables.filter((x) => !x.parent_table);
      return html`
      <div class=${'shell' + (menuOpen.value ? ' menu-open' : '')}>
        <header class="topbar">
          <button class="icon menu-btn" type="button" aria-label=${t('nav.menu')} onClick=${() => (menuOpen.value = !menuOpen.value)}>☰</button>
          <a class="brand" href="#/">${t('app.title')}</a>
          <label class="tenant-pick"><span class="sr-only">${t('nav.tenant')}</span>
            <select aria-label=${t('nav.tenant')} value=${state.tenant} onChange=${(e) => { switchTenant(e.target.value); go('home'); }}>
              ${state.tenants.map((x) => html`<option value=${x.slug} key=${x.slug}>${x.name}</option>`)}
            </select>
          </label>
          <nav class="mainnav" aria-label=${t('nav.main')}>
            ${NAV.map(([k, lbl]) => html`<a key=${k} href=${'#/' + (k === 'home' ? '' : k)}
               class=${(r.name === k || (k === 'home' && ['table', 'designer'].includes(r.name))) ? 'active' : ''}
               onClick=${() => (menuOpen.value = false)}>${t(lbl)}</a>`)}
          </nav>
          <span class="spacer"></span>
          <${LangSwitch} />
          <span class="user muted">${state.user.name || state.user.email}</span>
          <button type="button" class="link" onClick=${logout}>${t('nav.logout')}</button>
        </header>
        <div class="body">
          <aside class="sidebar" aria-label=${t('nav.tables')}>
            <h2>${t('nav.tables')}</h2>
            <ul class="table-list">
              ${userTables.map((tb) => html`<li key=${tb.id}>
                 <a href=${'#/table/' + tb.api_name} class=${r.parts[1] === tb.api_name ? 'active' : ''}
                    onClick=${() => (menuOpen.value = false)}>${label(tb.label, tb.api_name)}</a></li>`)}
            </ul>
            <a class="button" href="#/designer/new" data-test="new-table">＋ ${t('tables.new')}</a>
          </aside>
          <main class="content" id="main">${screen(r)}</main>
        </div>
        ${state.toast ? html`<div class=${'toast ' + state.toast.kind} role="status">${state.toast.text}</div>` : null}
      </div>`;
    };
  },
};

function screen(r) {
  if (!state.tenant) return html`<p class="empty">${t('tenant.none')}</p>`;
  switch (r.name) {
    case 'designer': return html`<${TableDesigner} key=${'d' + r.parts[1]} tableName=${r.parts[1]} />`;
    case 'table': return html`<${DataScreen} key=${'t' + state.tenant + r.parts[1]} tableName=${r.parts[1]} viewName=${r.parts[2] || ''} />`;
    case 'rules': return html`<${RulesScreen} key=${'r' + state.tenant} ruleName=${r.parts[1] || ''} />`;
    case 'dashboards': return html`<${DashboardsScreen} key=${'b' + state.tenant + (r.parts[1] || '')} dashName=${r.parts[1] || ''} mode=${r.parts[2] || ''} />`;
    case 'approvals': return html`<${ApprovalsScreen} key=${'a' + state.tenant} />`;
    case 'admin': return html`<${AdminScreen} key=${'m' + state.tenant} tab=${r.parts[1] || 'members'} />`;
    default: return html`<${Home} />`;
  }
}

const Home = {
  setup() {
    const apps = ref([]), gallery = ref([]), installed = ref([]), busy = ref(''), sample = ref(true), report = ref(null), err = ref('');
    get('/apps').then((d) => (apps.value = d.apps)).catch(() => {});
    get('/api/v1/templates').then((d) => (gallery.value = d.templates)).catch(() => {});
    get('/templates').then((d) => (installed.value = d.templates.map((x) => x.name))).catch(() => {});
    async function install(tp) {
      busy.value = tp.name; err.value = ''; report.value = null;
      try {
        const d = await post('/templates/install', { name: tp.name, with_sample_data: sample.value });
        report.value = d.report; installed.value = [...installed.value, tp.name];
        await loadTables(); toast(t('gallery.installed'), 'ok');
      } catch (e) { err.value = msgOf(e); } finally { busy.value = ''; }
    }
    return () => {
      const tables = state.tables.filter((x) => !x.parent_table);
      return html`<section class="home">
        <h1>${t('home.title')}</h1>
        ${apps.value.length ? html`<p class="muted">${t('home.apps')}: ${apps.value.map((a) => label(a.label, a.api_name)).join(' · ')}</p>` : null}
        <div class="cards">
          ${tables.map((tb) => html`<div class="card table-card" key=${tb.id}>
            <h3><a href=${'#/table/' + tb.api_name}>${label(tb.label, tb.api_name)}</a></h3>
            <p class="muted">${tb.api_name} · ${t('home.nfields', { n: tb.fields.length })}</p>
            <div class="row"><a class="button" href=${'#/table/' + tb.api_name}>${t('home.open')}</a>
              <a class="button" href=${'#/designer/' + tb.api_name}>${t('home.design')}</a></div>
          </div>`)}
          <a class="card table-card new" href="#/designer/new">＋ ${t('tables.new')}</a>
        </div>
        ${gallery.value.length ? html`<h2 class="gallery-title">${t('gallery.title')}</h2>
          <label class="check"><input type="checkbox" checked=${sample.value} onChange=${(e) => (sample.value = e.target.checked)} /> ${t('gallery.sample')}</label>
          <div class="cards gallery">${gallery.value.map((tp) => html`<div class="card" key=${tp.name} data-test=${'template-' + tp.name}>
            <h3>${label(tp.label, tp.name)} <span class="muted small">v${tp.version}</span></h3>
            <p class="small">${label(tp.description, '')}</p>
            ${installed.value.includes(tp.name) ? html`<span class="pill c-green">${t('gallery.done')}</span>`
              : html`<button type="button" class="primary" disabled=${!!busy.value} onClick=${() => install(tp)}>${busy.value === tp.name ? t('gallery.installing') : t('gallery.install')}</button>`}
          </div>`)}</div>
          ${busy.value ? html`<progress aria-label=${t('gallery.installing')}></progress>` : null}
          ${err.value ? html`<div class="banner error" role="alert">${err.value}</div>` : null}
          ${report.value ? html`<details><summary>${t('gallery.report')}</summary><pre class="dry">${JSON.stringify(report.value, null, 2)}</pre></details>` : null}` : null}
      </section>`;
    };
  },
};

const Root = {
  setup() {
    (async () => {
      try {
        const [me, ft] = await Promise.all([get('/api/v1/auth/me').catch(() => null), get('/api/v1/field-types')]);
        state.fieldTypes = ft.field_types;
        if (me && me.user) await afterLogin(me);
      } finally { state.booted = true; document.documentElement.lang = state.lang; }
    })();
    return () => {
      if (!state.booted) return html`<p class="boot">${t('app.loading')}</p>`;
      return state.user ? html`<${Shell} />` : html`<${Login} />`;
    };
  },
};

createApp(Root).mount('#app');
