/*
 * Helpers for the H5 pages. ES5 only, no modules and no fetch(): the DingTalk and WeCom
 * webviews on older phones run old Chromium (X5) and WebKit builds.
 *
 *   ppFetch(url, options)        JSON over XMLHttpRequest with cookies; returns a Promise
 *                                (when the webview has one) of the parsed body, and shows a
 *                                Chinese message on failure unless options.quiet.
 *                                options: method, body (object: sent as JSON), headers,
 *                                timeout (ms), quiet, done(body), fail(error).
 *   ppShowMessage(text, kind)    a toast; kind is "error" (default), "notice" or "success".
 *   ppBusy(button, busy)         disables a button while a request runs, against double taps.
 */
(function (window, document) {
  'use strict';

  var DEFAULT_TIMEOUT_MS = 15000;
  var toastTimer = null;

  function hideMessage() {
    var toast = document.getElementById('pp-toast');
    if (toast) {
      toast.setAttribute('hidden', '');
    }
  }

  function showMessage(text, kind) {
    var toast = document.getElementById('pp-toast');
    kind = kind || 'error';
    if (!toast) {
      window.alert(text);
      return;
    }
    toast.textContent = text;
    toast.className = 'pp-toast pp-toast-' + kind;
    toast.removeAttribute('hidden');
    if (toastTimer) {
      window.clearTimeout(toastTimer);
    }
    toastTimer = window.setTimeout(hideMessage, kind === 'error' ? 5000 : 2500);
  }

  function messageFor(status, body) {
    if (body && typeof body.detail === 'string' && body.detail) {
      return body.detail;
    }
    if (status === 0) {
      return '网络连接失败，请检查网络后重试';
    }
    if (status === -1) {
      return '请求超时，请稍后重试';
    }
    if (status === 401) {
      return '登录已过期，请从钉钉或企业微信重新打开页面';
    }
    if (status === 403) {
      return '您没有权限进行此操作';
    }
    if (status === 404) {
      return '要找的内容不存在或已被删除';
    }
    if (status === 422) {
      return '提交的内容有误，请检查后重试';
    }
    if (status === 429) {
      return '操作太频繁，请稍后再试';
    }
    if (status >= 500) {
      return '服务器暂时无法处理，请稍后重试';
    }
    return '请求失败（' + status + '），请稍后重试';
  }

  function request(url, options, onDone, onFail) {
    var xhr = new XMLHttpRequest();
    var hasBody = options.body !== undefined && options.body !== null;
    var method = (options.method || (hasBody ? 'POST' : 'GET')).toUpperCase();
    var headers = options.headers || {};
    var payload = null;
    var finished = false;
    var name;

    function fail(status, body) {
      var error;
      if (finished) {
        return;
      }
      finished = true;
      error = new Error(messageFor(status, body));
      error.status = status;
      error.body = body;
      if (!options.quiet) {
        showMessage(error.message, 'error');
      }
      onFail(error);
    }

    xhr.open(method, url, true);
    xhr.withCredentials = true;
    xhr.timeout = options.timeout || DEFAULT_TIMEOUT_MS;
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('X-Requested-With', 'XMLHttpRequest');
    if (hasBody) {
      if (typeof options.body === 'string') {
        payload = options.body;
      } else {
        payload = JSON.stringify(options.body);
        xhr.setRequestHeader('Content-Type', 'application/json; charset=utf-8');
      }
    }
    for (name in headers) {
      if (Object.prototype.hasOwnProperty.call(headers, name)) {
        xhr.setRequestHeader(name, headers[name]);
      }
    }

    xhr.onload = function () {
      var body = null;
      if (xhr.responseText) {
        try {
          body = JSON.parse(xhr.responseText);
        } catch (ignored) {
          body = null;
        }
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        finished = true;
        onDone(body);
      } else {
        fail(xhr.status, body);
      }
    };
    xhr.onerror = function () {
      fail(0, null);
    };
    xhr.ontimeout = function () {
      fail(-1, null);
    };
    xhr.send(payload);
  }

  function ppFetch(url, options) {
    options = options || {};

    function done(body) {
      if (typeof options.done === 'function') {
        options.done(body);
      }
    }

    function failed(error) {
      if (typeof options.fail === 'function') {
        options.fail(error);
      }
    }

    if (typeof window.Promise !== 'function') {
      // Very old webviews: callbacks only.
      request(url, options, done, failed);
      return undefined;
    }
    return new window.Promise(function (resolve, reject) {
      request(
        url,
        options,
        function (body) {
          done(body);
          resolve(body);
        },
        function (error) {
          failed(error);
          reject(error);
        }
      );
    });
  }

  function ppBusy(button, busy) {
    if (!button) {
      return;
    }
    if (busy) {
      if (!button.getAttribute('data-label')) {
        button.setAttribute('data-label', button.textContent);
      }
      button.disabled = true;
      button.className += ' is-busy';
      button.textContent = '处理中…';
    } else {
      button.disabled = false;
      button.className = button.className.replace(/\s*\bis-busy\b/g, '');
      if (button.getAttribute('data-label')) {
        button.textContent = button.getAttribute('data-label');
        button.removeAttribute('data-label');
      }
    }
  }

  document.addEventListener('click', function (event) {
    if (event.target && event.target.id === 'pp-toast') {
      hideMessage();
    }
  }, false);

  window.ppFetch = ppFetch;
  window.ppShowMessage = showMessage;
  window.ppBusy = ppBusy;
})(window, document);
