// berth portal: copy buttons and confirmations. Everything works without it (reading, forms);
// htmx (vendored, see htmx-2.0.11.LICENSE) updates the check-access and event forms in place.
(function () {
  "use strict";
  function init(root) {
    root.querySelectorAll("button.copy[data-copy]").forEach(function (b) {
      if (!navigator.clipboard) { return; }
      b.hidden = false;
      if (b.dataset.bound) { return; }
      b.dataset.bound = "1";
      b.addEventListener("click", function () {
        var el = document.getElementById(b.dataset.copy);
        if (!el) { return; }
        navigator.clipboard.writeText(el.textContent.trim()).then(function () {
          b.textContent = "Copied";
          b.dataset.copied = "true";
          setTimeout(function () { b.textContent = "Copy"; }, 2000);
        }, function () { b.textContent = "Select and copy"; });
      });
    });
  }
  document.addEventListener("submit", function (e) {
    var f = e.target;
    if (f.dataset && f.dataset.confirm && !window.confirm(f.dataset.confirm)) { e.preventDefault(); }
  }, true);
  document.addEventListener("DOMContentLoaded", function () { init(document); });
  document.addEventListener("htmx:afterSettle", function (e) { init(e.target); });
})();
