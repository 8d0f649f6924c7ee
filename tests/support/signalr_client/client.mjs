// Drives /hubs/notifications with Microsoft's own SignalR client (@microsoft/signalr, as the original web
// app did): sign in, connect, create a tenant over REST, wait for TenantCreated.
//
//   node client.mjs <negotiate|skip-negotiation|reconnect> <baseUrl> <tenantId> <tenantName>
//   environment: DIQUIS_EMAIL, DIQUIS_PASSWORD (a root user's)
//
// Prints one JSON object per line, in the order things happen ({"event": ...}); the test reads and judges
// them. In the `reconnect` scenario it prints "ready" and waits for the server to go away and come back.
import * as signalR from "@microsoft/signalr";

const [scenario, baseUrl, tenantId, tenantName] = process.argv.slice(2);
const emit = (event, detail = {}) => console.log(JSON.stringify({ event, ...detail }));

function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function once(register) {
  return new Promise((resolve) => register(resolve));
}

async function api(method, path, { token, body, headers = {} } = {}) {
  const response = await fetch(baseUrl + path, {
    method,
    headers: {
      "Content-Type": "application/json",
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
      ...headers,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload = await response.json();
  if (!response.ok) {
    throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(payload.messages)}`);
  }
  return payload;
}

async function main() {
  // The original client names the tenant in a capitalised `Tenant` header.
  const signedIn = await api("POST", "/api/tokens", {
    body: { email: process.env.DIQUIS_EMAIL, password: process.env.DIQUIS_PASSWORD },
    headers: { Tenant: "root" },
  });
  const token = signedIn.data.token;

  const options = { accessTokenFactory: () => token };
  if (scenario === "skip-negotiation") {
    Object.assign(options, { skipNegotiation: true, transport: signalR.HttpTransportType.WebSockets });
  }
  const logger = {
    log(level, message) {
      if (level >= signalR.LogLevel.Information) emit("log", { level, message });
    },
  };
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(`${baseUrl}/hubs/notifications`, options)
    .configureLogging(logger);
  if (scenario === "reconnect") builder = builder.withAutomaticReconnect();
  const connection = builder.build();

  const connected = once((resolve) =>
    connection.on("Connected", (...args) => {
      emit("Connected", { arguments: args });
      resolve();
    }),
  );
  const created = once((resolve) =>
    connection.on("TenantCreated", (...args) => {
      emit("TenantCreated", { arguments: args });
      resolve();
    }),
  );
  connection.on("TenantProvisioningProgress", (...args) => emit("TenantProvisioningProgress", { arguments: args }));
  const reconnecting = once((resolve) => connection.onreconnecting((error) => resolve(emit("reconnecting", { error: error?.message ?? null }))));
  const reconnected = once((resolve) => connection.onreconnected((id) => resolve(emit("reconnected", { connectionId: id ?? null }))));

  await connection.start();
  emit("started", { connectionId: connection.connectionId ?? null, state: connection.state });
  await within(20000, connected, "Connected");

  if (scenario === "reconnect") {
    emit("ready");
    await within(60000, reconnecting, "reconnecting");
    await within(90000, reconnected, "reconnected");
  }

  await api("POST", "/api/tenants", {
    token,
    body: {
      id: tenantId,
      name: tenantName,
      adminEmail: `admin@${tenantId}.test`,
      password: "Tenant-Admin-Pass-9!",
      hasIsolatedDatabase: false,
    },
  });
  await within(60000, created, "TenantCreated");
  await connection.stop();
  emit("done");
}

main().then(
  () => process.exit(0),
  (error) => {
    emit("error", { message: String(error?.stack ?? error) });
    process.exit(1);
  },
);
