// A "Print" button (data-print) opens the browser's print dialog; the print stylesheet hides the
// navigation. Without JavaScript the button stays hidden and the browser's own menu prints.
(function () {
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
})();

// Printed, the review's explanations ("How this is decided") show in full.
window.addEventListener("beforeprint", function () {
  document.querySelectorAll("main details:not([open])").forEach(function (d) {
    d.setAttribute("open", "");
    d.dataset.printOpened = "";
  });
});
window.addEventListener("afterprint", function () {
  document.querySelectorAll("main details[data-print-opened]").forEach(function (d) {
    d.removeAttribute("open");
    delete d.dataset.printOpened;
  });
});
