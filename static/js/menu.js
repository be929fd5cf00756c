// Top bar menus (<details class="menu">): one open at a time; a click elsewhere or Escape closes it.
(function () {
  "use strict";
  const menus = () => Array.from(document.querySelectorAll("details.menu"));
  document.addEventListener("toggle", (event) => {
    const opened = event.target;
    if (!(opened instanceof HTMLDetailsElement) || !opened.matches("details.menu") || !opened.open) return;
    menus().forEach((menu) => { if (menu !== opened) menu.open = false; });
  }, true);
  document.addEventListener("click", (event) => {
    menus().forEach((menu) => { if (menu.open && !menu.contains(event.target)) menu.open = false; });
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    menus().forEach((menu) => {
      if (!menu.open) return;
      menu.open = false;
      menu.querySelector("summary").focus();
    });
  });
})();
