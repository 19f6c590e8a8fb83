/** Sign-in screen. A 429 shows how long to wait and disables the button until then. */

import { login } from '../api.js';
import { clearErrors, field, h, replaceChildren, showError } from '../dom.js';

export function mountLogin(container, { onSignedIn }) {
  let countdownTimer = null;
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, autocapitalize: 'off' });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const submit = h('button', { type: 'submit', class: 'button button--primary button--wide' }, 'Sign in');
  const form = h(
    'form',
    { class: 'card login', novalidate: true },
    h('h1', {}, 'Sign in to the manager panel'),
    h('p', { class: 'form-error', role: 'alert', hidden: true }),
    field('Username', username),
    field('Password', password),
    submit,
  );

  const waitRetryAfter = (seconds) => {
    let remaining = seconds;
    submit.disabled = true;
    const tick = () => {
      if (remaining <= 0) {
        clearInterval(countdownTimer);
        submit.disabled = false;
        submit.textContent = 'Sign in';
        return;
      }
      submit.textContent = `Try again in ${remaining} s`;
      remaining -= 1;
    };
    tick();
    countdownTimer = setInterval(tick, 1000);
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearErrors(form);
    if (!username.value.trim()) {
      showError(form, { field: 'username', message: 'Enter your username.' });
      return;
    }
    if (!password.value) {
      showError(form, { field: 'password', message: 'Enter your password.' });
      return;
    }
    submit.disabled = true;
    try {
      await login(username.value.trim(), password.value);
      onSignedIn();
    } catch (error) {
      submit.disabled = false;
      if (error.status === 429) {
        const seconds = error.retryAfterSeconds ?? 60;
        showError(form, { message: `Too many failed sign-ins. Try again in ${seconds} seconds.` });
        waitRetryAfter(seconds);
      } else {
        showError(form, error);
      }
    }
  });

  replaceChildren(container, h('div', { class: 'login-page' }, form));
  username.focus();
  return () => clearInterval(countdownTimer);
}
