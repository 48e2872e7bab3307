import { SignJWT } from "jose";
const token = await new SignJWT({ tenant_id: "bench", user_id: "bench", roles: ["admin"] }).setProtectedHeader({ alg: "HS256" }).setIssuedAt().setExpirationTime("1h").sign(new TextEncoder().encode("bench-secret-that-is-long-enough-0123456789abcdef"));
const h = { headers: { authorization: `Bearer ${token}` } };
const list = await (await fetch(`http://127.0.0.1:47013/traces?limit=2`, h)).json();
console.log(JSON.stringify(list).slice(0, 600));
const id = process.argv[2] ?? (list.traces ?? list.items ?? list.data)?.[0]?.id;
const tr = await (await fetch(`http://127.0.0.1:47013/traces/${id}`, h)).json();
console.log(JSON.stringify(tr).slice(0, 3000));
