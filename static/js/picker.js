// Search pickers (templates/_picker.html, _picker_multi.html): Enter in the search box searches
// instead of submitting the form; a match's button (Enter or click) becomes the chosen value,
// or, in a multi picker, is added as a chip; a chip's "Remove" takes it out.
(function () {
  if (window.okrPicker) return;
  window.okrPicker = true;
  document.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && event.target.matches("[data-picker-q]")) {
      event.preventDefault();
      htmx.trigger(event.target, "search");
    }
  });

  function resetSearch(picker) {
    picker.querySelector(".picker-results").replaceChildren();
    const search = picker.querySelector("[data-picker-q]");
    search.value = "";
    search.focus();
  }

  function multiClick(event, multi) {
    const remove = event.target.closest("[data-picker-remove]");
    const option = event.target.closest(".picker-option[data-value]");
    const chips = multi.querySelector("[data-picker-chips]");
    if (remove) {
      event.preventDefault();
      const chip = remove.closest("li");
      const next = chip.nextElementSibling || chip.previousElementSibling;
      chip.remove();
      multi.querySelector("[data-picker-none]").hidden = chips.children.length > 0;
      (next ? next.querySelector("[data-picker-remove]") : multi.querySelector("[data-picker-q]")).focus();
      return;
    }
    if (!option) return;
    const name = multi.dataset.name;
    const taken = Array.from(chips.querySelectorAll("input[type=hidden]"))
      .some(function (input) { return input.value === option.dataset.value; });
    if (!taken) {
      const chip = document.createElement("li");
      chip.className = "chip";
      const input = document.createElement("input");
      input.type = "hidden"; input.name = name; input.value = option.dataset.value;
      const label = document.createElement("span");
      label.textContent = option.dataset.label;
      const button = document.createElement("button");
      button.type = "submit"; button.className = "link-btn"; button.textContent = "Remove";
      button.name = "_drop"; button.value = name + ":" + option.dataset.value;
      button.formNoValidate = true;
      button.setAttribute("data-picker-remove", "");
      button.setAttribute("aria-label", "Remove " + option.dataset.label);
      chip.append(input, label, " ", button);
      chips.append(chip);
    }
    multi.querySelector("[data-picker-none]").hidden = true;
    resetSearch(multi);
  }

  // A suggestion's "Use" button (templates/suggestions/_suggestions.html) fills a picker.
  document.addEventListener("click", function (event) {
    const fill = event.target.closest("[data-picker-fill]");
    const value = fill && document.getElementById(fill.dataset.pickerFill + "_value");
    if (!value) return;
    const picker = value.closest("[data-picker]");
    value.value = fill.dataset.value;
    picker.querySelector("[data-picker-label]").textContent = fill.dataset.label;
    const clearButton = picker.querySelector("[data-picker-clear]");
    if (clearButton) clearButton.hidden = false;
    fill.textContent = "Chosen";
  });

  document.addEventListener("click", function (event) {
    const multi = event.target.closest("[data-picker-multi]");
    if (multi) return multiClick(event, multi);
    const option = event.target.closest(".picker-option[data-value]");
    const clear = event.target.closest("[data-picker-clear]");
    const picker = (option || clear) && (option || clear).closest("[data-picker]");
    if (!picker) return;
    const label = picker.querySelector("[data-picker-label]");
    const clearButton = picker.querySelector("[data-picker-clear]");
    picker.querySelector("[data-picker-value]").value = option ? option.dataset.value : "";
    label.textContent = option ? option.dataset.label : label.dataset.empty;
    if (clearButton) clearButton.hidden = !option;
    resetSearch(picker);
  });
})();
