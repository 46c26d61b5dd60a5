// A small Markdown renderer for runbooks that builds DOM nodes and never parses HTML: headings, paragraphs,
// ordered and unordered lists, fenced code, inline code, **bold**, *emphasis* and [links](...). A link is
// kept only when it points at the dashboard (#/...) or at http(s); anything else (javascript:, data:) is
// shown as plain text. Raw HTML in the file is shown as the text it is.
import { h } from './util.js';

const SAFE_HREF = /^(#\/|https?:\/\/)/i;

/** Inline text -> an array of nodes and strings (for h()). */
export function inline(text) {
  const out = [];
  // code spans first, then links, bold, emphasis; the rest is text
  const re = /`([^`]+)`|\[([^\]]+)\]\(([^)\s]+)\)|\*\*([^*]+)\*\*|\*([^*]+)\*/g;
  let last = 0;
  for (let m; (m = re.exec(text));) {
    if (m.index > last) out.push(text.slice(last, m.index));
    if (m[1] !== undefined) out.push(h('code', {}, m[1]));
    else if (m[2] !== undefined) out.push(SAFE_HREF.test(m[3]) ? h('a', linkAttrs(m[3]), m[2]) : `${m[2]} (${m[3]})`);
    else if (m[4] !== undefined) out.push(h('strong', {}, m[4]));
    else out.push(h('em', {}, m[5]));
    last = re.lastIndex;
  }
  if (last < text.length) out.push(text.slice(last));
  return out;
}

function linkAttrs(href) {
  return href.startsWith('#') ? { href } : { href, target: '_blank', rel: 'noopener noreferrer' };
}

/** Markdown text -> a DocumentFragment. `#` becomes h<base>, `##` h<base+1>, ... (at most h6). */
export function render(md, { base = 2 } = {}) {
  const frag = document.createDocumentFragment();
  const lines = String(md || '').replace(/\r\n?/g, '\n').split('\n');
  let para = [], list = null, code = null;
  const flushPara = () => {
    if (para.length) frag.append(h('p', {}, inline(para.join(' '))));
    para = [];
  };
  const flushList = () => {
    if (list) frag.append(list);
    list = null;
  };
  for (const line of lines) {
    if (code) {
      if (/^```/.test(line)) { frag.append(h('pre', {}, h('code', {}, code.join('\n')))); code = null; }
      else code.push(line);
      continue;
    }
    let m;
    if (/^```/.test(line)) { flushPara(); flushList(); code = []; }
    else if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) {
      flushPara(); flushList();
      frag.append(h('h' + Math.min(6, m[1].length - 1 + base), {}, inline(m[2])));
    } else if ((m = /^\s*(?:[-*]|(\d+)\.)\s+(.*)$/.exec(line))) {
      flushPara();
      const tag = m[1] !== undefined ? 'ol' : 'ul';
      if (!list || list.tagName.toLowerCase() !== tag) { flushList(); list = h(tag, {}); }
      list.append(h('li', {}, inline(m[2])));
    } else if (!line.trim()) { flushPara(); flushList(); }
    else { flushList(); para.push(line.trim()); }
  }
  if (code) frag.append(h('pre', {}, h('code', {}, code.join('\n'))));
  flushPara();
  flushList();
  return frag;
}
