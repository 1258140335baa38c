// Building the page's elements. Text from the session (keypoint, rule and output names, paths,
// errors) only ever goes in as textContent: a name like <img src=x onerror=...> shows as text.

export function el(tag, { cls, text, title, data } = {}, children = []) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (title) node.title = String(title);
  if (data) for (const [k, v] of Object.entries(data)) node.dataset[k] = String(v);
  for (const child of children) node.append(child);
  return node;
}

export function replaceChildren(parent, children) {
  parent.replaceChildren(...children);
}

export function setText(id, text) {
  document.getElementById(id).textContent = String(text);
}

export function showResult(node, reply, okText) {
  node.classList.toggle("error", !reply.ok);
  node.classList.toggle("ok", !!reply.ok);
  node.textContent = reply.ok ? okText(reply) : `refused: ${reply.error}`;
}
