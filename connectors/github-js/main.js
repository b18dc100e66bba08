// The component's entry: the host's logging import, and the `api` export.
import { log } from 'openconnectors:connector/logging@0.2.0';
import { defineConnector, setLogger } from '../../guest-sdk/js/connector-sdk.js';
import { github } from './connector.js';

setLogger(log);
export const api = defineConnector(github);
