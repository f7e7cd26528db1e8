// The schedule form: show only the fields of the chosen repeat (weekly days, monthly day or
// weekday) and the link's validity only for link delivery. Without JavaScript every field
// shows, and the server ignores the ones that do not apply.
(function () {
  "use strict";
  function byId(id) { return document.getElementById(id); }
  function show(id, visible) {
    var element = byId(id);
    if (element) { element.hidden = !visible; }
  }
  function update() {
    var frequency = byId("frequency").value;
    var monthly = byId("monthly").value;
    show("when-weekly", frequency === "weekly");
    show("when-monthly", frequency === "monthly");
    show("monthly-day", frequency === "monthly" && monthly === "day");
    show("monthly-weekday", frequency === "monthly" && monthly === "weekday");
    show("link-validity", byId("delivery").value === "link");
  }
  document.addEventListener("DOMContentLoaded", function () {
    ["frequency", "monthly", "delivery"].forEach(function (id) {
      byId(id).addEventListener("change", update);
    });
    update();
  });
})();
