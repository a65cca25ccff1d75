// The recovery codes page's "Print" button: shown only when script runs
// (without it the codes are still on the page, to copy or print from the
// browser's menu). A file of ours, no inline script: the CSP forbids that.
"use strict";
document.querySelectorAll("[data-print]").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
});
