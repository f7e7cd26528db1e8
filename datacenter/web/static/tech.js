// The technicians' console. Sorting and filtering are links and forms the server answers; this
// only adds conveniences: a click anywhere on a grid row opens the site, and the grid reloads
// itself every minute while the tab is visible (the console is often left open on a wall).
"use strict";

(function () {
  const REFRESH_MS = 60 * 1000;

  document.addEventListener("click", function (event) {
    const row = event.target.closest("tr[data-href]");
    if (!row || event.target.closest("a, button, input, select, textarea")) {
      return;
    }
    window.location.assign(row.dataset.href);
  });

  if (document.getElementById("sites")) {
    window.setInterval(function () {
      if (document.visibilityState === "visible") {
        window.location.reload();
      }
    }, REFRESH_MS);
  }
})();
