// Search pickers (templates/_picker.html): Enter in the search box searches instead of
// submitting the form; a match's button (Enter or click) becomes the chosen value.
(function () {
  if (window.okrPicker) return;
  window.okrPicker = true;
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.matches("[data-picker-q]")) {
      event.preventDefault();
      htmx.trigger(event.target, "search");
    }
  });
  document.addEventListener("click", function (event) {
    const option = event.target.closest(".picker-option[data-value]");
    const clear = event.target.closest("[data-picker-clear]");
    const picker = (option || clear) && (option || clear).closest("[data-picker]");
    if (!picker) return;
    const label = picker.querySelector("[data-picker-label]");
    const clearButton = picker.querySelector("[data-picker-clear]");
    picker.querySelector("[data-picker-value]").value = option ? option.dataset.value : "";
    label.textContent = option ? option.dataset.label : label.dataset.empty;
    if (clearButton) clearButton.hidden = !option;
    picker.querySelector(".picker-results").replaceChildren();
    const search = picker.querySelector("[data-picker-q]");
    search.value = "";
    search.focus();
  });
})();
