// Shared by the tests: one synthesis of the construct in a fixed environment (no AWS account).
import * as path from 'node:path';
import { App, CfnResource, Stack } from 'aws-cdk-lib';
import { Snap2DsqlMigration, type Snap2DsqlMigrationProps } from '../lib';
import type { Template } from './parity/sam';

// The built-in CloudFormation validation of `cdk synth` runs in `make check-cdk`'s CLI synthesis;
// the in-process syntheses here skip it (it takes seconds each).
process.env.CDK_VALIDATION = 'false';

export const ROOT = path.resolve(__dirname, '../../..');
export const SAM_TEMPLATE = process.env.SAM_TEMPLATE ?? path.join(ROOT, 'infra/template.yaml');
/** Placeholder bootstraps: enough to synthesize, nothing to run. */
export const FIXTURE_FUNCTIONS = path.join(__dirname, 'fixtures/functions');

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';
export const STACK_NAME = 'snap2dsql-test';
export const ENDPOINT = 'abc123.dsql.us-east-1.on.aws';
export const CLUSTER_ARN = `arn:aws:dsql:${REGION}:${ACCOUNT}:cluster/abc123`;

export interface Synthesis {
  readonly stack: Stack;
  readonly migration: Snap2DsqlMigration;
  readonly template: Template;
  /** CDK logical id -> the construct path below the migration (ExportKey, SnapshotRole, ...). */
  readonly names: Map<string, string>;
}

export function synthesize(props: Partial<Snap2DsqlMigrationProps> = {}): Synthesis {
  const app = new App();
  const stack = new Stack(app, 'Test', { stackName: STACK_NAME, env: { account: ACCOUNT, region: REGION } });
  const migration = new Snap2DsqlMigration(stack, 'Migration', {
    dsqlClusterEndpoint: ENDPOINT,
    dsqlClusterArn: CLUSTER_ARN,
    functionsDir: FIXTURE_FUNCTIONS,
    ...props,
  });
  const template = app.synth().getStackByName(STACK_NAME).template as Template;
  const names = new Map<string, string>();
  for (const c of migration.node.findAll()) {
    if (c instanceof CfnResource) {
      const below = c.node.path.slice(migration.node.path.length + 1);
      names.set(stack.resolve(c.logicalId), below.replace(/\/Resource$/, ''));
    }
  }
  return { stack, migration, template, names };
}
