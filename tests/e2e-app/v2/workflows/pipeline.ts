// Deployment v2 of the pipeline: the same workflow with its steps in the other order. Replaying a
// v1 run's event log on this code would hand stepB the cached result of v1's stepA.
import { createHook } from 'workflow';

async function stepA(i: number) {
  'use step';
  return `A${i}@${process.env.PLT_WORLD_DEPLOYMENT_VERSION}`;
}

async function stepB(i: number) {
  'use step';
  return `B${i}@${process.env.PLT_WORLD_DEPLOYMENT_VERSION}`;
}

export async function pipeline(i: number) {
  'use workflow';
  const first = await stepB(i);
  await createHook<{ go: boolean }>({ token: `pipeline-${i}` });
  const second = await stepA(i);
  return [first, second];
}
