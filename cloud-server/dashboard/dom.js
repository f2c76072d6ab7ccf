// The dashboard's one DOM helper: h('div', { class: 'x', text: 'hi' }, child, ...) makes an
// element with its attributes and appends the children. `text` sets the text; an attribute
// that is true is set empty (disabled: true), one that is false, null or undefined is left out.
export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') node.textContent = v;
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  node.append(...children);
  return node;
}
