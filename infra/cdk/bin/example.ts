// Example app: one stack holding the migration, configured with context values.
//   npx cdk deploy -c dsqlClusterEndpoint=abc123.dsql.us-east-1.on.aws \
//     -c dsqlClusterArn=arn:aws:dsql:us-east-1:123456789012:cluster/abc123 [-c sourceClusterId=storefront-prod]
//     [-c functionsDir=dist] [-c stackName=snap2dsql] [-c enableExportCompletedTrigger=true]
//     [-c notificationEmail=ops@example.com] [-c enableTracing=true] [-c metricsNamespace=snap2dsql]
//     [-c permissionsBoundaryArn=arn:aws:iam::123456789012:policy/boundary]
//     [-c sourceSubnetIds=subnet-1,subnet-2 -c sourceSecurityGroupIds=sg-1] [-c tags=cost-center=data,owner=ops]
import { App, CfnOutput, Stack, Tags } from 'aws-cdk-lib';
import { Snap2DsqlMigration } from '../lib';

const app = new App();
const context = (name: string): string | undefined => app.node.tryGetContext(name);
const required = (name: string): string => {
  const value = context(name);
  if (!value) {
    throw new Error(`context value ${name} is required: cdk deploy -c ${name}=...`);
  }
  return value;
};

const stack = new Stack(app, 'Snap2Dsql', {
  stackName: context('stackName') ?? 'snap2dsql',
  description: 'snap2dsql: migrate an Aurora PostgreSQL snapshot export (S3, Parquet) into Amazon Aurora DSQL.',
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
const ids = (name: string) => context(name)?.split(',').filter((id) => id !== '');
// Stack-level tags: CloudFormation adds them to every resource of the stack, as with
// `sam deploy --tags`.
for (const pair of ids('tags') ?? []) {
  const [key, ...value] = pair.split('=');
  Tags.of(stack).add(key, value.join('='));
}
const number = (name: string) => (context(name) === undefined ? undefined : Number(context(name)));
const migration = new Snap2DsqlMigration(stack, 'Migration', {
  dsqlClusterEndpoint: required('dsqlClusterEndpoint'),
  dsqlClusterArn: required('dsqlClusterArn'),
  functionsDir: required('functionsDir'),
  sourceClusterId: context('sourceClusterId'),
  mappingObjectKey: context('mappingObjectKey'),
  exportPrefix: context('exportPrefix'),
  loadConcurrency: number('loadConcurrency'),
  loadConnections: number('loadConnections'),
  logRetention: number('logRetentionDays'),
  enableExportCompletedTrigger: String(context('enableExportCompletedTrigger')) === 'true',
  metricsNamespace: context('metricsNamespace'),
  notificationEmail: context('notificationEmail'),
  enableTracing: String(context('enableTracing')) === 'true',
  permissionsBoundaryArn: context('permissionsBoundaryArn'),
  sourceSubnetIds: ids('sourceSubnetIds'),
  sourceSecurityGroupIds: ids('sourceSecurityGroupIds'),
});

new CfnOutput(stack, 'StateMachineArn', {
  description: 'ARN of the migrate state machine (aws stepfunctions start-execution --state-machine-arn ...).',
  value: migration.stateMachine.stateMachineArn,
});
new CfnOutput(stack, 'ExportBucketName', {
  description: 'Export bucket; upload mapping.toml here; run artefacts and reports land under runs/.',
  value: migration.bucket.bucketName,
});
new CfnOutput(stack, 'ExportRoleArn', {
  description: 'Role RDS assumes to write snapshot exports.',
  value: migration.exportRole.roleArn,
});
new CfnOutput(stack, 'ExportKmsKeyArn', {
  description: 'KMS key encrypting the exports, run artefacts and logs.',
  value: migration.key.keyArn,
});
