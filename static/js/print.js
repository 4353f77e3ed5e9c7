// A "Print" button (data-print) opens the browser's print dialog; the print stylesheet hides the
// navigation. Without JavaScript the button stays hidden and the browser's own menu prints.
(function () {
  document.querySelectorAll("[data-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
})();
