// Small DOM helpers shared by the page's modules. Text goes in through textContent only, never as HTML.

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

export function button(text, title, onClick) {
  const node = el("button", "", text);
  node.type = "button";
  if (title) node.title = title;
  node.addEventListener("click", onClick);
  return node;
}

export function chip(text, className, title) {
  const node = el("li", `lab ${className || ""}`.trim(), text);
  if (title) node.title = title;
  return node;
}
