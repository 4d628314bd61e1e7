// @ts-check
// The Workflow DevKit's own World conformance suite, straight over SQL.
import { createTestSuite } from '@workflow/world-testing';
import { useTransport } from './context.js';

useTransport('sql');
createTestSuite('./src/index.js');
