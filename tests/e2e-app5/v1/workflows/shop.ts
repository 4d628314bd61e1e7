// A WDK 5 app's workflow, started and resumed from SQL by the end-to-end test: a step, a hook,
// and an outcome large enough that WDK 5 compresses it.
import { createHook } from 'workflow';

async function price(sku: string, qty: number) {
  'use step';
  return { sku, qty, cents: qty * 1250 };
}

export async function checkout(sku: string, qty: number, token: string) {
  'use workflow';
  const line = await price(sku, qty);
  const hook = createHook<{ paid: boolean; note: string }>({ token });
  const payment = await hook;
  // Past 1 KiB, so WDK 5 stores it compressed.
  const receipt = Array.from({ length: 80 }, (_, i) => `line ${i}: ${sku} x${qty}`);
  return { line, payment, receipt };
}
