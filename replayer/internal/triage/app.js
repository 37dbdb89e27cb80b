// leadpipe triage: progressive enhancement only; every page works without this script.
(function () {
  "use strict";
  // Times: the server writes UTC; show them in the viewer's zone, UTC on hover.
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };
  document.querySelectorAll("time[datetime]").forEach(function (el) {
    var d = new Date(el.getAttribute("datetime"));
    if (isNaN(d)) { return; }
    el.title = el.textContent.trim() + " (UTC)";
    el.textContent = d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + " " +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
    el.classList.add("local");
  });
  // Time filters: the inputs hold UTC from the server; show and submit them as local time.
  var toLocal = function (v) {
    var d = new Date(v + ":00Z");
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" + pad(d.getHours()) + ":" + pad(d.getMinutes());
  };
  document.querySelectorAll("input[type=datetime-local][data-utc]").forEach(function (el) {
    if (el.value) { el.value = toLocal(el.value); }
    var label = el.closest("label");
    if (label && label.querySelector(".tz")) { label.querySelector(".tz").textContent = "(local)"; }
  });
  document.querySelectorAll("form.filters").forEach(function (f) {
    f.addEventListener("submit", function () {
      f.querySelectorAll("input[type=datetime-local][data-utc]").forEach(function (el) {
        if (!el.value) { return; }
        var d = new Date(el.value);
        el.value = d.toISOString().slice(0, 16);
      });
    });
  });
  var zone = document.getElementById("tz");
  if (zone) {
    try { var tz = Intl.DateTimeFormat().resolvedOptions().timeZone; zone.textContent = (tz === "UTC" || tz === "Etc/UTC") ? "Times in UTC." : "Times in " + tz + " (hover for UTC)."; } catch (e) { /* keep UTC note */ }
  }
  // Refresh: reload every data-refresh seconds unless the operator is typing or has typed.
  var secs = parseInt(document.body.getAttribute("data-refresh") || "0", 10);
  if (secs > 0) {
    var dirty = false;
    document.addEventListener("input", function () { dirty = true; });
    setInterval(function () {
      var a = document.activeElement;
      var typing = a && (a.tagName === "INPUT" || a.tagName === "TEXTAREA" || a.tagName === "SELECT");
      if (!dirty && !typing && document.visibilityState !== "hidden") { location.reload(); }
    }, secs * 1000);
  }
})();
