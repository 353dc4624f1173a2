/*
 * JSON forms for the H5 pages, on top of h5.js (ES5 only, like it). A <form data-api="/api/v1/…">
 * is not submitted but sent as JSON with ppFetch, and its answer's `message` shown as a toast:
 *
 *   name="scores.political"   nested fields: {scores: {political: …}}
 *   data-kind="number"        sent as a number (left out when empty); "bool": a checkbox's state
 *   data-required="…"         the message shown when the field is empty
 *   data-confirm="…"          on the form or on a submit button: asked first
 *   data-field, data-value    on a submit button: sets that field (通过 / 驳回 in one form)
 *   data-needs, data-needs-message   on a submit button: a field it needs filled (驳回 → reason)
 *   data-then                 "reload" (default) or a page URL, "{id}" taken from the answer
 *
 * <input type="file" data-autosubmit> submits its (plain, multipart) form once a file is chosen.
 */
(function (window, document) {
  'use strict';

  function trim(text) {
    return (text || '').replace(/^\s+|\s+$/g, '');
  }

  function put(body, name, value) {
    var parts = name.split('.');
    var node = body;
    var i;
    for (i = 0; i < parts.length - 1; i += 1) {
      if (typeof node[parts[i]] !== 'object' || node[parts[i]] === null) {
        node[parts[i]] = {};
      }
      node = node[parts[i]];
    }
    node[parts[parts.length - 1]] = value;
  }

  function refuse(message, field) {
    ppShowMessage(message);
    if (field && field.focus) {
      field.focus();
    }
    return null;
  }

  function fieldValue(field) {
    var kind = field.getAttribute('data-kind');
    var value;
    if (kind === 'bool') {
      return field.checked;
    }
    value = trim(field.value);
    if (kind === 'number' && value !== '') {
      value = Number(value);
      if (isNaN(value)) {
        return undefined;
      }
    }
    return value;
  }

  // The JSON body of a form, or null once the person has been told what is missing.
  function collect(form, button) {
    var body = {};
    var i;
    var field;
    var value;
    var needed;
    for (i = 0; i < form.elements.length; i += 1) {
      field = form.elements[i];
      if (!field.name || field.disabled || /^(submit|button|file)$/.test(field.type) ||
          (field.type === 'radio' && !field.checked)) {
        continue;
      }
      value = fieldValue(field);
      if (value === undefined) {
        return refuse('请填写数字', field);
      }
      if (value === '') {
        if (field.getAttribute('data-required')) {
          return refuse(field.getAttribute('data-required'), field);
        }
        if (field.getAttribute('data-kind') === 'number') {
          continue;
        }
      }
      put(body, field.name, value);
    }
    if (button && button.getAttribute('data-field')) {
      value = button.getAttribute('data-value');
      put(body, button.getAttribute('data-field'),
          value === 'true' ? true : (value === 'false' ? false : value));
    }
    needed = button && button.getAttribute('data-needs');
    if (needed && !body[needed]) {
      return refuse(button.getAttribute('data-needs-message') || '请填写完整', form.elements[needed]);
    }
    return body;
  }

  function after(form, answer) {
    var then = form.getAttribute('data-then') || 'reload';
    ppShowMessage((answer && answer.message) || '操作成功', 'success');
    window.setTimeout(function () {
      if (then === 'reload') {
        window.location.reload();
      } else {
        window.location.href = then.replace('{id}', answer && answer.id);
      }
    }, 900);
  }

  function send(form, button) {
    var body = collect(form, button);
    var question = (button && button.getAttribute('data-confirm')) ||
      form.getAttribute('data-confirm');
    var request;
    if (body === null || (question && !window.confirm(question))) {
      return;
    }
    ppBusy(button, true);
    request = ppFetch(form.getAttribute('data-api'), {
      method: 'POST',
      body: body,
      done: function (answer) { after(form, answer); },
      fail: function () { ppBusy(button, false); }
    });
    // The toast has told the person already; keep the console free of unhandled rejections.
    if (request && request.then) {
      request.then(null, function () {});
    }
  }

  function submitButton(node) {
    while (node && node !== document) {
      if (node.tagName === 'BUTTON' && node.form) {
        return node;
      }
      node = node.parentNode;
    }
    return null;
  }

  // Which button sent a form: old webviews have no SubmitEvent.submitter.
  document.addEventListener('click', function (event) {
    var button = submitButton(event.target);
    if (button) {
      button.form.ppButton = button;
    }
  }, false);

  document.addEventListener('submit', function (event) {
    var form = event.target;
    var button;
    if (!form || !form.getAttribute || !form.getAttribute('data-api')) {
      return;
    }
    event.preventDefault();
    button = form.ppButton || form.querySelector('button[type="submit"], button:not([type])');
    form.ppButton = null;
    if (button && button.disabled) {
      return;
    }
    send(form, button);
  }, false);

  document.addEventListener('change', function (event) {
    var field = event.target;
    var button;
    if (field && field.type === 'file' && field.getAttribute('data-autosubmit') &&
        field.value && field.form) {
      button = field.form.querySelector('button[type="submit"]');
      ppBusy(button, true);
      field.form.submit();
    }
  }, false);
})(window, document);
