// The tiles' icons: small inline SVGs (24×24, drawn with strokes in the current colour),
// one per kind of device and state, shipped with the page. iconFor() picks one.

const SVG = 'http://www.w3.org/2000/svg';

// Each icon is a list of [element, attributes]; "fill" marks a shape filled in the
// current colour (a lit bulb), the rest are strokes.
const ICONS = {
  'lamp-on': [
    ['path', { d: 'M9 18h6M10 21h4', class: 'stroke' }],
    ['path', { d: 'M12 3a6 6 0 0 0-3.5 10.9c.6.5 1 1.2 1 2.1h5c0-.9.4-1.6 1-2.1A6 6 0 0 0 12 3z', class: 'fill' }],
    ['path', { d: 'M12 0.5v1M3.5 4l.8.8M20.5 4l-.8.8M1 11h1.2M21.8 11H23', class: 'stroke rays' }],
  ],
  'lamp-off': [
    ['path', { d: 'M9 18h6M10 21h4', class: 'stroke' }],
    ['path', { d: 'M12 3a6 6 0 0 0-3.5 10.9c.6.5 1 1.2 1 2.1h5c0-.9.4-1.6 1-2.1A6 6 0 0 0 12 3z', class: 'stroke' }],
  ],
  'lock-locked': [
    ['rect', { x: 5, y: 10.5, width: 14, height: 10.5, rx: 2, class: 'fill' }],
    ['path', { d: 'M8 10.5V7a4 4 0 0 1 8 0v3.5', class: 'stroke' }],
  ],
  'lock-unlocked': [
    ['rect', { x: 5, y: 10.5, width: 14, height: 10.5, rx: 2, class: 'stroke' }],
    ['path', { d: 'M8 10.5V7a4 4 0 0 1 7.7-1.5', class: 'stroke' }],
    ['path', { d: 'M12 14.5v3', class: 'stroke' }],
  ],
  thermometer: [
    ['path', { d: 'M10 4a2 2 0 0 1 4 0v9.5a4 4 0 1 1-4 0z', class: 'stroke' }],
    ['circle', { cx: 12, cy: 17, r: 1.8, class: 'fill' }],
    ['path', { d: 'M12 15V8', class: 'stroke' }],
  ],
  'contact-closed': [
    ['rect', { x: 6, y: 3, width: 12, height: 18, rx: 1, class: 'stroke' }],
    ['circle', { cx: 15, cy: 12, r: 1, class: 'fill' }],
  ],
  'contact-open': [
    ['path', { d: 'M6 3h12v18H6z', class: 'stroke dashed' }],
    ['path', { d: 'M6 3l7 2.5v17L6 21z', class: 'fill' }],
  ],
  plug: [
    ['path', { d: 'M9 3v5M15 3v5M6 8h12v3a6 6 0 0 1-12 0zM12 17v4', class: 'stroke' }],
  ],
  microphone: [
    ['rect', { x: 9, y: 3, width: 6, height: 11, rx: 3, class: 'stroke' }],
    ['path', { d: 'M6 11a6 6 0 0 0 12 0M12 17v4M9 21h6', class: 'stroke' }],
  ],
  speaker: [
    ['path', { d: 'M4 9h4l5-4v14l-5-4H4z', class: 'stroke' }],
    ['path', { d: 'M16.5 8.5a5 5 0 0 1 0 7M19 6a8.5 8.5 0 0 1 0 12', class: 'stroke' }],
  ],
  device: [
    ['rect', { x: 5, y: 5, width: 14, height: 14, rx: 2, class: 'stroke' }],
    ['path', { d: 'M9 1.5v3.5M15 1.5v3.5M9 19v3.5M15 19v3.5M1.5 9H5M1.5 15H5M19 9h3.5M19 15h3.5', class: 'stroke' }],
  ],
  offline: [
    ['path', { d: 'M2 8.5a15 15 0 0 1 20 0M5 12a10 10 0 0 1 14 0M8.5 15.5a5 5 0 0 1 7 0', class: 'stroke' }],
    ['circle', { cx: 12, cy: 19, r: 1.3, class: 'fill' }],
    ['path', { d: 'M3 3l18 18', class: 'stroke slash' }],
  ],
};

export function iconNames() {
  return Object.keys(ICONS);
}

// The icon's name for a device's kind and what its state says (tile.js' `look`).
export function iconFor(kind, look) {
  if (look === 'offline') return 'offline';
  if (kind === 'lamp' || kind === 'light') return look === 'on' ? 'lamp-on' : 'lamp-off';
  if (kind === 'lock') return look === 'alert' ? 'lock-unlocked' : 'lock-locked';
  if (kind === 'contact' || kind === 'door' || kind === 'window') return look === 'alert' ? 'contact-open' : 'contact-closed';
  if (kind === 'thermometer' || kind === 'sensor') return 'thermometer';
  if (kind === 'plug' || kind === 'switch') return 'plug';
  if (kind === 'microphone' || kind === 'intercom') return 'microphone';
  if (kind === 'speaker') return 'speaker';
  return 'device';
}

// A new <svg> for the named icon, hidden from screen readers (the tile says it in words).
export function icon(name) {
  const svg = document.createElementNS(SVG, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('focusable', 'false');
  svg.setAttribute('class', 'icon');
  svg.dataset.icon = name;
  for (const [tag, attrs] of ICONS[name] || ICONS.device) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    svg.append(node);
  }
  return svg;
}
