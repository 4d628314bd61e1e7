// @ts-check
// The Workflow DevKit's own World conformance suite, over the façade.
import { createTestSuite } from '@workflow/world-testing';
import { useTransport } from './context.js';

useTransport('http');
createTestSuite('./src/index.js');
