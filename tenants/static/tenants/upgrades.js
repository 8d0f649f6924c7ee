/*
 * The admin's Upgrades pages, live without reloading: the list (each row) and an upgrade's page.
 *
 * The notification websocket (tenants/hub.js) brings UpgradeProgress frames, which move the upgrade's bar and
 * counts at once, and UpgradeFinished / UpgradeFailed, which show a toast. After a frame the page reads the
 * upgrade's figures view (JSON: tenants.admin_upgrades.figures) for what frames do not carry: the status, the
 * ETA, each server, the failures, the buttons its status allows. Frames go to the root who started the upgrade
 * only, so while an upgrade on the page is open its figures are also read every few seconds: often while the
 * socket is down, now and then while it is up.
 */
'use strict';
(function () {
    const OPEN = new Set(['Pending', 'Running', 'Paused']);
    const UPGRADE_EVENTS = new Set(['UpgradeProgress', 'UpgradeFinished', 'UpgradeFailed']);
    const COUNTS = ['total', 'done', 'failed', 'skipped'];
    const POLL_SOCKET_DOWN_MS = 3000;
    const POLL_SOCKET_UP_MS = 10000;
    const FETCH_AFTER_FRAME_MS = 500;

    let socketOpen = false;
    let pollTimer = null;
    const pending = new Map(); // upgrade id -> timer of the figures fetch a frame asked for

    // --- where each upgrade of the page is ----------------------------------------------------------------

    // {id: {root, url}}: the change page's content, or each row of the list.
    function upgradesOnPage() {
        const found = new Map();
        const page = document.getElementById('upgrade-live');
        if (page) {
            found.set(page.dataset.upgradeId, {root: document.getElementById('content-main'), url: page.dataset.figuresUrl});
            return found;
        }
        document.querySelectorAll('#result_list [data-upgrade-id]').forEach((bar) => {
            found.set(bar.dataset.upgradeId, {root: bar.closest('tr'), url: bar.dataset.figuresUrl});
        });
        return found;
    }

    function statusOf(root) {
        const badge = root.querySelector('[data-upgrade-status]');
        return badge ? badge.dataset.upgradeStatus : null;
    }

    // --- showing figures (a frame's counts, or the whole figures view) -----------------------------------

    function setText(el, text) {
        if (el && el.textContent !== text) el.textContent = text;
    }

    function showStatus(root, status) {
        const badge = root.querySelector('[data-upgrade-status]');
        if (!badge || badge.dataset.upgradeStatus === status) return;
        badge.dataset.upgradeStatus = status;
        badge.className = 'tenant-badge tenant-badge--' + status.toLowerCase();
        badge.replaceChildren();
        if (status === 'Running') {
            const spinner = document.createElement('span');
            spinner.className = 'tenant-spinner';
            spinner.setAttribute('aria-hidden', 'true');
            badge.append(spinner);
        }
        badge.append(status);
    }

    function showCounts(root, figures) {
        COUNTS.forEach((name) => {
            if (name in figures) setText(root.querySelector('[data-count="' + name + '"]'), String(figures[name]));
        });
        const bar = root.querySelector('.upgrade-progress progress');
        if (bar && COUNTS.every((name) => name in figures)) {
            bar.max = figures.total || 1;
            bar.value = figures.done + figures.failed + figures.skipped;
        }
    }

    function row(cells) {
        const tr = document.createElement('tr');
        cells.forEach((cell) => {
            const td = document.createElement('td');
            if (cell instanceof Node) td.append(cell);
            else td.textContent = String(cell);
            tr.append(td);
        });
        return tr;
    }

    function emptyRow(span, text) {
        const tr = row([text]);
        tr.firstChild.colSpan = span;
        return tr;
    }

    function showServers(root, servers) {
        const body = root.querySelector('[data-upgrade-servers]');
        if (!body) return;
        const names = Object.keys(servers).sort();
        const rows = names.map((name) => {
            const counts = servers[name];
            return row([name, counts.done, counts.failed, counts.pending, counts.skipped]);
        });
        body.replaceChildren(...(rows.length ? rows : [emptyRow(5, 'No tenant database to upgrade.')]));
    }

    function showFailures(root, failures) {
        const body = root.querySelector('[data-upgrade-failures]');
        if (!body) return;
        const rows = failures.map((failure) => {
            const error = document.createElement('div');
            error.className = 'tenant-error';
            error.textContent = failure.error;
            return row([failure.tenantId, error]);
        });
        body.replaceChildren(...(rows.length ? rows : [emptyRow(2, 'No failure.')]));
    }

    function showFigures(root, figures) {
        showStatus(root, figures.status);
        showCounts(root, figures);
        setText(root.querySelector('[data-upgrade-eta]'), figures.eta);
        setText(root.querySelector('[data-upgrade-field="error"]'), figures.error);
        setText(root.querySelector('[data-upgrade-field="finishedAt"]'), figures.finishedAt);
        showServers(root, figures.servers);
        showFailures(root, figures.failures);
        root.querySelectorAll('[data-upgrade-action]').forEach((button) => {
            button.hidden = !figures.actions.includes(button.dataset.upgradeAction);
        });
    }

    // --- reading the figures view ----------------------------------------------------------------------

    async function refresh(id) {
        const upgrade = upgradesOnPage().get(id);
        if (!upgrade) return;
        try {
            const response = await fetch(upgrade.url, {credentials: 'same-origin', headers: {Accept: 'application/json'}});
            if (response.ok) showFigures(upgrade.root, await response.json());
        } catch (error) {
            // The server may be restarting: the next frame or poll tries again.
        }
    }

    function refreshSoon(id) {
        if (pending.has(id)) return; // frames in a burst make one fetch
        pending.set(id, setTimeout(() => {
            pending.delete(id);
            refresh(id);
        }, FETCH_AFTER_FRAME_MS));
    }

    function openUpgrades() {
        return Array.from(upgradesOnPage()).filter(([, upgrade]) => OPEN.has(statusOf(upgrade.root))).map(([id]) => id);
    }

    function schedulePoll() {
        clearTimeout(pollTimer);
        pollTimer = setTimeout(async () => {
            await Promise.all(openUpgrades().map(refresh));
            schedulePoll();
        }, socketOpen ? POLL_SOCKET_UP_MS : POLL_SOCKET_DOWN_MS);
    }

    // --- the websocket -----------------------------------------------------------------------------------

    function onFrame(frame) {
        if (!UPGRADE_EVENTS.has(frame.event)) {
            if (frame.event !== 'Connected') window.diquisHub.toastFor(frame);
            return;
        }
        window.diquisHub.toastFor(frame);
        const id = String(frame.data.upgradeId);
        const upgrade = upgradesOnPage().get(id);
        if (!upgrade) return;
        showCounts(upgrade.root, frame.data);
        refreshSoon(id);
    }

    function start() {
        if (!document.body.classList.contains('model-upgrade') || !upgradesOnPage().size) return;
        window.diquisHub.addLiveDot();
        window.diquisHub.connect({
            onFrame,
            onConnected: () => {
                socketOpen = true;
                openUpgrades().forEach(refreshSoon); // what happened before the socket joined
                schedulePoll();
            },
            onClose: () => {
                socketOpen = false;
                schedulePoll();
            },
        });
        schedulePoll();
    }

    if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
    else start();
})();
