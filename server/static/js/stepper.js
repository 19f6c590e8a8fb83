/** Quantity stepper: a number input between a decrease and an increase button. */

import { el } from './dom.js';

/**
 * Returns a stepper element. The buttons move the value by `step` within [min, max].
 * `onChange(value)` runs after a button press, or when the typed value is committed
 * (blur or Enter), with the value passed through `normalize`.
 */
export function renderStepper({ value, min, max, step, label, disabled = false, normalize, onChange }) {
  const input = el('input', {
    type: 'number',
    inputmode: 'numeric',
    class: 'stepper__input',
    value,
    min,
    max: Number.isFinite(max) ? max : null,
    step,
    'aria-label': label,
    disabled,
  });
  const decrease = el('button', { type: 'button', class: 'stepper__button', 'aria-label': `Decrease ${label.toLowerCase()}`, disabled }, '−');
  const increase = el('button', { type: 'button', class: 'stepper__button', 'aria-label': `Increase ${label.toLowerCase()}`, disabled }, '+');

  let current = value;
  const updateButtons = () => {
    decrease.disabled = disabled || current - step < min;
    increase.disabled = disabled || current + step > max;
  };
  const commit = (next) => {
    const normalized = normalize ? normalize(next) : next;
    input.value = String(normalized);
    if (normalized !== current) {
      current = normalized;
      updateButtons();
      onChange(normalized);
    }
  };

  decrease.addEventListener('click', () => commit(current - step));
  increase.addEventListener('click', () => commit(current + step));
  input.addEventListener('change', () => commit(Number.parseInt(input.value, 10) || 0));
  updateButtons();

  return el('div', { class: 'stepper', role: 'group', 'aria-label': label }, decrease, input, increase);
}
