// The comparison benchmark's workflow: three sequential steps.
async function plusOne(x: number) {
  'use step';
  return x + 1;
}

async function timesTwo(x: number) {
  'use step';
  return x * 2;
}

async function minusThree(x: number) {
  'use step';
  return x - 3;
}

export async function threeSteps(x: number) {
  'use workflow';
  return await minusThree(await timesTwo(await plusOne(x)));
}
