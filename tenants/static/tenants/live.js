/*
 * Live tenant pages of the admin (the list and a tenant's page), without reloading.
 *
 * The page opens the notification websocket (tenants/hub.js, loaded first). Every notification shows a
 * toast; progress frames show the current step under the badge.
 * When a frame names a tenant, the page fetches itself again and patches what changed: the rows of the
 * list (keeping the action checkboxes) or the live parts of the change page. Notifications go to the
 * user who started an operation, so while a tenant on the page is in flight, the page also re-reads
 * itself every few seconds: operations started by someone else show up too.
 */
'use strict';
(function () {
    const IN_FLIGHT = new Set(['Pending', 'Provisioning', 'Updating', 'Deleting', 'Moving']);
    const POLL_MS = 10000;

    const progress = new Map(); // tenantId -> the last TenantProvisioningProgress data
    let since = null; // the last notification id seen: a reconnect replays from there
    let refreshTimer = null;
    let pollTimer = null;
    let refreshing = false;
    let refreshAgain = false;

    function pageKind() {
        const body = document.body.classList;
        if (!body.contains('model-tenant')) return null;
        if (body.contains('change-list')) return 'list';
        if (body.contains('change-form')) return 'form';
        return null;
    }

    // The tenant of a change page (null on the add page, which only shows toasts).
    function pageTenant() {
        const badge = document.querySelector('#content-main [data-tenant-id]');
        return badge ? badge.dataset.tenantId : null;
    }

    function canRefresh() {
        return kind === 'list' || (kind === 'form' && pageTenant() !== null);
    }

    // --- progress under the badges --------------------------------------------------------------------

    function showProgress() {
        document.querySelectorAll('[data-progress-for]').forEach((slot) => {
            const id = slot.dataset.progressFor;
            const badge = document.querySelector('[data-tenant-id="' + CSS.escape(id) + '"]');
            const step = progress.get(id);
            slot.replaceChildren();
            if (!step || !badge || !IN_FLIGHT.has(badge.dataset.status)) return;
            const bar = document.createElement('progress');
            bar.max = step.stepCount;
            bar.value = step.stepIndex - 1;
            slot.append(bar, 'Step ' + step.stepIndex + ' of ' + step.stepCount + ': ' + step.step);
        });
    }

    // --- patching the page from a fresh copy of itself -------------------------------------------------

    function rowsById(root) {
        const rows = new Map();
        root.querySelectorAll('#result_list tbody tr').forEach((tr) => {
            const badge = tr.querySelector('[data-tenant-id]');
            if (badge) rows.set(badge.dataset.tenantId, tr);
        });
        return rows;
    }

    function replaceChangelist(doc) {
        const form = document.getElementById('changelist-form');
        const fresh = doc.getElementById('changelist-form');
        if (!form || !fresh) {
            const list = document.getElementById('changelist');
            const freshList = doc.getElementById('changelist');
            if (list && freshList) list.replaceWith(document.adoptNode(freshList));
            return;
        }
        const checked = new Set(Array.from(form.querySelectorAll('input.action-select:checked'), (box) => box.value));
        const action = form.querySelector('select[name=action]');
        const chosen = action ? action.value : '';
        form.replaceWith(document.adoptNode(fresh));
        const boxes = document.querySelectorAll('tr input.action-select');
        boxes.forEach((box) => {
            if (checked.has(box.value)) {
                box.checked = true;
                box.closest('tr').classList.add('selected');
            }
        });
        const freshAction = document.querySelector('#changelist-form select[name=action]');
        if (freshAction) freshAction.value = chosen;
        if (boxes.length && window.Actions) window.Actions(boxes); // Django's own action bar, re-armed
    }

    function patchList(doc) {
        const now = rowsById(document);
        const next = rowsById(doc);
        const nowIds = Array.from(now.keys());
        const nextIds = Array.from(next.keys());
        if (nowIds.length !== nextIds.length || nowIds.some((id, i) => id !== nextIds[i])) {
            replaceChangelist(doc);
            return;
        }
        next.forEach((freshRow, id) => {
            const cells = now.get(id).children;
            const freshCells = freshRow.children;
            for (let i = 0; i < cells.length && i < freshCells.length; i++) {
                if (cells[i].classList.contains('action-checkbox')) continue; // keeps its state and listeners
                if (cells[i].innerHTML !== freshCells[i].innerHTML) cells[i].innerHTML = freshCells[i].innerHTML;
            }
        });
    }

    function editable(root) {
        return root.querySelector('#content-main input[name="_save"]') !== null;
    }

    function patchForm(doc) {
        const main = document.getElementById('content-main');
        const fresh = doc.getElementById('content-main');
        if (!main || !fresh) return;
        if (editable(document) !== editable(doc)) {
            // Editing became possible (or impossible): the form itself changes, and the title says so.
            main.replaceWith(document.adoptNode(fresh));
            const title = document.querySelector('#content > h1');
            const freshTitle = doc.querySelector('#content > h1');
            if (title && freshTitle) title.firstChild.textContent = freshTitle.textContent;
            return;
        }
        const readonly = main.querySelectorAll('.readonly');
        const freshReadonly = fresh.querySelectorAll('.readonly');
        if (readonly.length === freshReadonly.length) {
            readonly.forEach((el, i) => {
                if (el.innerHTML !== freshReadonly[i].innerHTML) el.innerHTML = freshReadonly[i].innerHTML;
            });
        }
        main.querySelectorAll('[data-live]').forEach((el) => {
            const twin = fresh.querySelector('[data-live="' + CSS.escape(el.dataset.live) + '"]');
            if (twin && el.innerHTML !== twin.innerHTML) el.innerHTML = twin.innerHTML;
        });
    }

    function tenantGone() {
        const main = document.getElementById('content-main');
        if (!main || main.querySelector('.tenant-gone')) return;
        const note = document.createElement('p');
        note.className = 'errornote tenant-gone';
        note.textContent = 'This tenant no longer exists.';
        main.prepend(note);
        main.querySelectorAll('.object-tools, .submit-row').forEach((el) => el.remove());
    }

    async function refresh() {
        if (!canRefresh()) return;
        if (refreshing) {
            refreshAgain = true;
            return;
        }
        refreshing = true;
        try {
            const response = await fetch(window.location.href, {
                credentials: 'same-origin',
                headers: {'X-Requested-With': 'XMLHttpRequest'},
            });
            if (kind === 'form' && response.redirected) {
                tenantGone(); // Django's admin sends a missing object's page back to the index
            } else if (response.ok) {
                const doc = new DOMParser().parseFromString(await response.text(), 'text/html');
                if (kind === 'list') patchList(doc);
                else patchForm(doc);
            }
            showProgress();
        } catch (error) {
            // The server may be restarting: the next frame, reconnect or poll tries again.
        } finally {
            refreshing = false;
            if (refreshAgain) {
                refreshAgain = false;
                scheduleRefresh();
            }
            schedulePoll();
        }
    }

    function scheduleRefresh() {
        clearTimeout(refreshTimer);
        refreshTimer = setTimeout(refresh, 100); // frames in a burst make one fetch
    }

    function schedulePoll() {
        clearTimeout(pollTimer);
        const busy = Array.from(document.querySelectorAll('[data-tenant-id]')).some((b) => IN_FLIGHT.has(b.dataset.status));
        if (busy && canRefresh()) pollTimer = setTimeout(refresh, POLL_MS);
    }

    // --- the websocket ----------------------------------------------------------------------------------

    function onFrame(frame) {
        if (typeof frame.id === 'number') since = Math.max(since || 0, frame.id);
        const data = frame.data || {};
        if (frame.event === 'Connected') return;
        if (frame.event === 'TenantProvisioningProgress') {
            progress.set(data.tenantId, data);
            showProgress();
        } else {
            window.diquisHub.toastFor(frame);
            if (data.tenantId) progress.delete(data.tenantId);
        }
        if (data.tenantId && (kind === 'list' || data.tenantId === pageTenant())) scheduleRefresh();
    }

    function connect() {
        window.diquisHub.connect({
            query: () => (since === null ? '' : '?since=' + encodeURIComponent(since)),
            onFrame,
            onClose: (wasOpen) => {
                if (wasOpen) scheduleRefresh(); // catch up on what changed while the socket was down
            },
        });
    }

    let kind = null; // 'list' or 'form', known once the body exists (this script loads in the head)

    function start() {
        kind = pageKind();
        if (!kind) return;
        const config = document.getElementById('tenant-live-config');
        if (config) since = JSON.parse(config.textContent).since;
        window.diquisHub.addLiveDot();
        connect();
        schedulePoll();
    }

    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
    else start();
})();
