/*
 * What the admin's live pages share (tenants/live.js, tenants/upgrades.js): the notification websocket and the
 * toasts.
 *
 * diquisHub.connect(handlers) opens /hubs/notifications (the browser sends the admin's session cookie) and opens
 * it again after a close, waiting longer each time; handlers: onFrame(frame), and optional query() (the query
 * string of the next opening, e.g. '?since=12'), onConnected() and onClose(wasOpen). The hub says Connected once
 * the socket has joined the user's group: from then on no notification is missed, so that is when the dot beside
 * the page title (diquisHub.addLiveDot) turns on and when a page should catch up on what came before.
 */
'use strict';
window.diquisHub = (function () {
    const HUB_PATH = '/hubs/notifications';
    const TOAST_MS = 8000;
    const MAX_RETRY_MS = 30000;

    function toast(type, text) {
        let box = document.getElementById('tenant-toasts');
        if (!box) {
            box = document.createElement('div');
            box.id = 'tenant-toasts';
            document.body.appendChild(box);
        }
        const item = document.createElement('div');
        const error = type === 'error';
        item.className = 'tenant-toast tenant-toast--' + (error ? 'error' : 'success');
        item.setAttribute('role', error ? 'alert' : 'status');
        const message = document.createElement('span');
        message.textContent = text;
        const close = document.createElement('button');
        close.type = 'button';
        close.className = 'tenant-toast-close';
        close.setAttribute('aria-label', 'Dismiss');
        close.textContent = '\u00d7';
        close.addEventListener('click', () => item.remove());
        item.append(message, close);
        box.appendChild(item);
        setTimeout(() => item.remove(), TOAST_MS);
    }

    // The toast a notification asks for (its data says success or error), if any.
    function toastFor(frame) {
        const data = frame.data || {};
        if (data.type === 'success' || data.type === 'error') toast(data.type, data.message);
    }

    function addLiveDot() {
        const title = document.querySelector('#content > h1');
        if (!title || title.querySelector('.tenant-live')) return;
        const dot = document.createElement('span');
        dot.className = 'tenant-live';
        title.appendChild(dot);
    }

    function setLive(on) {
        const dot = document.querySelector('.tenant-live');
        if (!dot) return;
        dot.classList.toggle('tenant-live--on', on);
        dot.title = on ? 'Live: updates arrive as they happen' : 'Reconnecting…';
    }

    function connect(handlers) {
        let retryMs = 1000;
        function open() {
            const scheme = window.location.protocol === 'https:' ? 'wss:' : 'ws:';
            const query = handlers.query ? handlers.query() : '';
            const socket = new WebSocket(scheme + '//' + window.location.host + HUB_PATH + query);
            let opened = false;
            socket.addEventListener('open', () => {
                opened = true;
                retryMs = 1000;
            });
            socket.addEventListener('message', (event) => {
                let frame;
                try {
                    frame = JSON.parse(event.data);
                } catch (error) {
                    return; // not a frame of this hub
                }
                if (frame.event === 'Connected') {
                    setLive(true);
                    if (handlers.onConnected) handlers.onConnected();
                }
                handlers.onFrame(frame);
            });
            socket.addEventListener('close', () => {
                setLive(false);
                if (handlers.onClose) handlers.onClose(opened);
                setTimeout(open, retryMs);
                retryMs = Math.min(retryMs * 2, MAX_RETRY_MS);
            });
        }
        open();
    }

    return {toast, toastFor, addLiveDot, connect};
})();
