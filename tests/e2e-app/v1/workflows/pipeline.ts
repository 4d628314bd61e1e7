// Deployment v1 of the pipeline: A, wait for approval, then B. Each step reports the deployment
// version of the pod that ran it.
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
  const first = await stepA(i);
  await createHook<{ go: boolean }>({ token: `pipeline-${i}` });
  const second = await stepB(i);
  return [first, second];
}
