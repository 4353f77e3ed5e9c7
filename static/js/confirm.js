// Destructive actions ask first (orgs/confirm.py). A form, or the button that submits it, with
// data-confirm="Remove ...?" opens the browser's dialog: Cancel sends nothing; OK adds
// confirm=yes to the form and lets it go (a plain post or htmx alike). Without JavaScript the
// server answers a post without confirm=yes with a page that asks.
(function () {
  if (window.okrConfirm) return;
  window.okrConfirm = true;
  document.addEventListener("submit", function (event) {
    const form = event.target;
    const button = event.submitter;
    const question = (button && button.dataset.confirm) || form.dataset.confirm;
    if (!question) return;
    if (!window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();  // htmx listens on the form: it must not send either
      return;
    }
    let field = form.querySelector("input[name=confirm][data-confirmed]");
    if (!field) {
      field = document.createElement("input");
      field.type = "hidden"; field.name = "confirm"; field.value = "yes";
      field.setAttribute("data-confirmed", "");
      form.append(field);
    }
  }, true);
})();
