// Snap2DsqlMigration: the CDK construct that deploys what infra/template.yaml (SAM) deploys.
//
// Every child's construct id is the SAM template's logical id of the same resource (ExportKey,
// SnapshotRole, LoadChunkFunction, MigrateStateMachine, ...), so the two templates can be read side
// by side and test/parity.test.ts compares them resource by resource. A change to one of them that
// the other does not make fails that test.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Duration, RemovalPolicy, Stack, Tags, Token } from 'aws-cdk-lib';
import type { CfnInclude } from 'aws-cdk-lib/cloudformation-include';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import {
  DEFAULT_METRICS_NAMESPACE,
  STACK_TAG,
  includeMonitoring,
  notificationsKeyStatement,
  sourceNetworkStatements,
  tracingPolicy,
} from './monitoring';
import { FUNCTIONS, FunctionName, functionStatements } from './policies';

/** The state machine definition both templates deploy (statemachine/migrate.asl.json). */
export const MIGRATE_ASL_PATH = path.resolve(__dirname, '../../../statemachine/migrate.asl.json');

export interface Snap2DsqlMigrationProps {
  /** Host name of the target Aurora DSQL cluster, e.g. abc123.dsql.us-east-1.on.aws, or abc123.dsql-fnh4.us-east-1.on.aws through a DSQL VPC endpoint (SAM: DsqlClusterEndpoint). */
  readonly dsqlClusterEndpoint: string;
  /** ARN of the same cluster; the functions get dsql:DbConnectAdmin on it alone (SAM: DsqlClusterArn). */
  readonly dsqlClusterArn: string;
  /**
   * Directory holding one sub-directory per function with its arm64 `bootstrap`
   * (`<dir>/snapshot/bootstrap`, ...), as `cargo lambda build --release --arm64 --lambda-dir <dir>`
   * writes them.
   */
  readonly functionsDir: string;
  /** Cluster the snapshot function snapshots when the input names none (SAM: SourceClusterId). @default '' */
  readonly sourceClusterId?: string;
  /** Key of mapping.toml in the export bucket (SAM: MappingObjectKey). @default 'mapping.toml' */
  readonly mappingObjectKey?: string;
  /** Prefix under which RDS writes the exports (SAM: ExportPrefix). @default 'exports' */
  readonly exportPrefix?: string;
  /** Default MaxConcurrency of the Distributed Map (SAM: LoadConcurrency). @default 8 */
  readonly loadConcurrency?: number;
  /** Connections one load-chunk invocation opens (SAM: LoadConnections). @default 4 */
  readonly loadConnections?: number;
  /** Start the state machine when RDS reports an export completed (SAM: EnableExportCompletedTrigger). @default false */
  readonly enableExportCompletedTrigger?: boolean;
  /** Retention of every log group (SAM: LogRetentionDays). @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Prefix of the function, state machine, log group and alias names (SAM uses the stack name).
   * Give each instance its own prefix when one stack holds several. At most 50 characters.
   * @default the stack name
   */
  readonly namePrefix?: string;
  /** The state machine definition. @default MIGRATE_ASL_PATH */
  readonly definitionPath?: string;
  /** CloudWatch namespace of the EMF metrics (SAM: MetricsNamespace). @default 'snap2dsql' */
  readonly metricsNamespace?: string;
  /**
   * Address an SNS topic mails when an execution ends and when an alarm fires (SAM:
   * NotificationEmail). @default '' (no topic)
   */
  readonly notificationEmail?: string;
  /** X-Ray tracing of the functions and the state machine (SAM: EnableTracing). @default false */
  readonly enableTracing?: boolean;
  /** Managed policy set as the permissions boundary of every role (SAM: PermissionsBoundaryArn). @default none */
  readonly permissionsBoundaryArn?: string;
  /**
   * Subnets of the functions that reach the source cluster (fan-out), e.g. the source's private
   * subnets (SAM: SourceSubnetIds). Requires sourceSecurityGroupIds. @default none (no VPC)
   */
  readonly sourceSubnetIds?: string[];
  /** Security groups of those functions (SAM: SourceSecurityGroupIds). @default none */
  readonly sourceSecurityGroupIds?: string[];
}

const ENDPOINT = /^[a-z0-9]+\.dsql(-[a-z0-9]+)?\.[a-z0-9-]+\.on\.aws$/;
const CLUSTER_ARN = /^arn:aws[a-z-]*:dsql:[a-z0-9-]+:[0-9]{12}:cluster\/[a-z0-9]+$/;
const SOURCE_CLUSTER = /^$|^[a-zA-Z][a-zA-Z0-9-]{0,62}$/;
const EXPORT_PREFIX = /^[a-zA-Z0-9!_.*'()-]+(\/[a-zA-Z0-9!_.*'()-]+)*$/;
const METRICS_NAMESPACE = /^(?!AWS\/)[a-zA-Z0-9._\/#:-]{1,255}$/;
const EMAIL = /^$|^[^@\s]+@[^@\s]+$/;
const BOUNDARY = /^$|^arn:aws[a-z-]*:iam::[0-9]{12}:policy\/.+$/;

// The checkov skips the SAM template carries on each function, with the same reasons.
const FUNCTION_CHECKOV_SKIPS = [
  {
    id: 'CKV_AWS_115',
    comment:
      "no reserved concurrency; the Distributed Map's MaxConcurrency bounds the invocations, and reserving would take from the account pool (10 on a new account).",
  },
  {
    id: 'CKV_AWS_116',
    comment:
      'no DLQ; Step Functions invokes synchronously and retries or catches errors, a DLQ only serves asynchronous invocations.',
  },
  {
    id: 'CKV_AWS_117',
    comment:
      "VPC only where needed: fan-out joins the source's VPC when sourceSubnetIds is set; S3, the RDS API and DSQL are reached with IAM auth over TLS.",
  },
  {
    id: 'CKV_AWS_173',
    comment:
      'AWS-managed env var encryption; the variables hold names and host names only, the DSQL password is an IAM token made at run time.',
  },
];

/**
 * The snap2dsql migration pipeline: five Rust Lambdas chained by the migrate state machine (a
 * Distributed Map fans the chunks out), the export bucket and its KMS key, the role RDS assumes
 * to write the export, one least-privilege role and one log group per function, the dashboard and
 * alarms of infra/monitoring.yaml, and optionally the EventBridge rule that starts a load when an
 * export completes, the notification topic, X-Ray tracing, a permissions boundary and the
 * source's network for fan-out. Every resource carries the tag snap2dsql:stack.
 */
export class Snap2DsqlMigration extends Construct {
  public readonly key: kms.Key;
  public readonly bucket: s3.Bucket;
  public readonly exportRole: iam.Role;
  public readonly functions: Record<FunctionName, lambda.Function>;
  public readonly functionRoles: Record<FunctionName, iam.Role>;
  public readonly logGroups: Record<FunctionName | 'Migrate', logs.LogGroup>;
  public readonly stateMachine: sfn.StateMachine;
  public readonly stateMachineRole: iam.Role;
  /** Present when enableExportCompletedTrigger is true. */
  public readonly exportCompletedRule?: events.Rule;
  /**
   * infra/monitoring.yaml as included: the dashboard, the alarms and the notification resources
   * (`monitoring.getResource('NotificationTopic')`, `getResource('Dashboard')`, ...).
   */
  public readonly monitoring: CfnInclude;

  constructor(scope: Construct, id: string, props: Snap2DsqlMigrationProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const prefix = props.namePrefix ?? stack.stackName;
    const sourceClusterId = props.sourceClusterId ?? '';
    const exportPrefix = props.exportPrefix ?? 'exports';
    const loadConcurrency = props.loadConcurrency ?? 8;
    const loadConnections = props.loadConnections ?? 4;
    const retention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    checkPattern('dsqlClusterEndpoint', props.dsqlClusterEndpoint, ENDPOINT);
    checkPattern('dsqlClusterArn', props.dsqlClusterArn, CLUSTER_ARN);
    checkPattern('sourceClusterId', sourceClusterId, SOURCE_CLUSTER);
    checkPattern('exportPrefix', exportPrefix, EXPORT_PREFIX);
    checkInteger('loadConcurrency', loadConcurrency, 1, 9999);
    checkInteger('loadConnections', loadConnections, 1, 999);
    const metricsNamespace = props.metricsNamespace ?? DEFAULT_METRICS_NAMESPACE;
    const notificationEmail = props.notificationEmail ?? '';
    const tracing = props.enableTracing ?? false;
    checkPattern('metricsNamespace', metricsNamespace, METRICS_NAMESPACE);
    checkPattern('notificationEmail', notificationEmail, EMAIL);
    checkPattern('permissionsBoundaryArn', props.permissionsBoundaryArn ?? '', BOUNDARY);
    const subnets = props.sourceSubnetIds ?? [];
    const securityGroups = props.sourceSecurityGroupIds ?? [];
    if (subnets.length > 0 && securityGroups.length === 0) {
      throw new Error('sourceSubnetIds needs sourceSecurityGroupIds');
    }
    if (!Token.isUnresolved(prefix) && prefix.length > 50) {
      throw new Error(`namePrefix "${prefix}" is longer than 50 characters (it prefixes the resource names)`);
    }
    const definitionPath = props.definitionPath ?? MIGRATE_ASL_PATH;
    const definition = readFile('the state machine definition', definitionPath);
    const assets = Object.fromEntries(
      FUNCTIONS.map((f) => [f.name, functionAsset(props.functionsDir, f.binary)]),
    ) as Record<FunctionName, string>;

    const partition = stack.partition;
    const region = stack.region;
    const account = stack.account;

    // --- Encryption key and export bucket ----------------------------------------------------
    this.key = new kms.Key(this, 'ExportKey', {
      description: `${prefix}: encrypts the RDS snapshot export, the run artefacts and the logs`,
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    new kms.CfnAlias(this, 'ExportKeyAlias', {
      aliasName: `alias/${prefix}-export`,
      targetKeyId: this.key.keyId,
    });

    this.bucket = new s3.Bucket(this, 'ExportBucket', {
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.key,
      bucketKeyEnabled: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      lifecycleRules: [
        {
          id: 'ExpireOldVersions',
          noncurrentVersionExpiration: Duration.days(30),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    cfnOf(this.bucket).addMetadata('checkov', {
      skip: [
        {
          id: 'CKV_AWS_18',
          comment:
            'server access logging needs a second bucket; every reader and writer is a role of this stack and CloudTrail data events can be enabled account-wide instead.',
        },
      ],
    });
    this.bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'DenyInsecureTransport',
        effect: iam.Effect.DENY,
        principals: [new iam.StarPrincipal()],
        actions: ['s3:*'],
        resources: [this.bucket.bucketArn, this.bucket.arnForObjects('*')],
        conditions: { Bool: { 'aws:SecureTransport': 'false' } },
      }),
    );

    // --- The role RDS assumes to write the export ---------------------------------------------
    this.exportRole = new iam.Role(this, 'ExportRole', {
      description: 'Assumed by RDS to write snapshot exports into the export bucket.',
      assumedBy: new iam.ServicePrincipal('export.rds.amazonaws.com').withConditions({
        StringEquals: { 'aws:SourceAccount': account },
      }),
    });
    const exportKeyActions = [
      'kms:Encrypt',
      'kms:Decrypt',
      'kms:GenerateDataKey*',
      'kms:ReEncrypt*',
      'kms:DescribeKey',
      'kms:CreateGrant',
      'kms:RetireGrant',
    ];
    // A separate policy (as in SAM): the key policy names the role and this policy names the key.
    new iam.Policy(this, 'ExportRolePolicy', {
      policyName: 'snapshot-export',
      roles: [this.exportRole],
      statements: [
        new iam.PolicyStatement({
          sid: 'ExportBucketWrite',
          actions: ['s3:PutObject*', 's3:GetObject*', 's3:ListBucket', 's3:DeleteObject*', 's3:GetBucketLocation'],
          resources: [this.bucket.bucketArn, this.bucket.arnForObjects('*')],
        }),
        new iam.PolicyStatement({ sid: 'ExportKeyUse', actions: exportKeyActions, resources: [this.key.keyArn] }),
      ],
    });
    // A key policy's Resource is always "*" (it means "this key"). CDK's default key policy is
    // SAM's AccountAdministration statement (the account root, kms:*).
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'RdsExportUse',
        principals: [new iam.ArnPrincipal(this.exportRole.roleArn)],
        actions: exportKeyActions,
        resources: ['*'],
      }),
    );
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchLogsUse',
        principals: [new iam.ServicePrincipal(`logs.${region}.amazonaws.com`)],
        actions: ['kms:Encrypt*', 'kms:Decrypt*', 'kms:ReEncrypt*', 'kms:GenerateDataKey*', 'kms:Describe*'],
        resources: ['*'],
        conditions: {
          ArnLike: {
            'kms:EncryptionContext:aws:logs:arn': `arn:${partition}:logs:${region}:${account}:log-group:*`,
          },
        },
      }),
    );

    // --- Log groups ------------------------------------------------------------------------------
    const logGroup = (id: string, name: string) =>
      new logs.LogGroup(this, id, {
        logGroupName: name,
        retention,
        encryptionKey: this.key,
        removalPolicy: RemovalPolicy.DESTROY,
      });
    const fnLogGroups = Object.fromEntries(
      FUNCTIONS.map((f) => [f.name, logGroup(`${f.name}LogGroup`, `/aws/lambda/${prefix}-${f.binary}`)]),
    ) as Record<FunctionName, logs.LogGroup>;
    // Step Functions vended logs: the /aws/vendedlogs/ prefix keeps the resource policy small.
    const migrateLogGroup = logGroup('MigrateLogGroup', `/aws/vendedlogs/states/${prefix}-migrate`);
    this.logGroups = { ...fnLogGroups, Migrate: migrateLogGroup };

    // --- Function roles and functions --------------------------------------------------------
    const targetUrl = `postgres://admin@${props.dsqlClusterEndpoint}/postgres`;
    const environment: Record<FunctionName, Record<string, string>> = {
      Snapshot: {
        RUST_LOG: 'info',
        EXPORT_BUCKET: this.bucket.bucketName,
        EXPORT_PREFIX: exportPrefix,
        EXPORT_ROLE_ARN: this.exportRole.roleArn,
        EXPORT_KMS_KEY_ARN: this.key.keyArn,
        SOURCE_CLUSTER_ID: sourceClusterId,
      },
      PollExport: { RUST_LOG: 'info' },
      FanOut: {
        RUST_LOG: 'info',
        EXPORT_BUCKET: this.bucket.bucketName,
        MAPPING_KEY: props.mappingObjectKey ?? 'mapping.toml',
        TARGET_URL: targetUrl,
      },
      LoadChunk: {
        RUST_LOG: 'info',
        TARGET_URL: targetUrl,
        LOAD_CONNECTIONS: String(loadConnections),
        METRICS_NAMESPACE: metricsNamespace,
      },
      Verify: {
        RUST_LOG: 'info',
        EXPORT_BUCKET: this.bucket.bucketName,
        TARGET_URL: targetUrl,
        METRICS_NAMESPACE: metricsNamespace,
      },
    };
    const refs = {
      bucketArn: this.bucket.bucketArn,
      keyArn: this.key.keyArn,
      exportRoleArn: this.exportRole.roleArn,
      dsqlClusterArn: props.dsqlClusterArn,
      sourceClusterId,
      partition,
      region,
      account,
    };
    const roles = {} as Record<FunctionName, iam.Role>;
    const functions = {} as Record<FunctionName, lambda.Function>;
    for (const f of FUNCTIONS) {
      roles[f.name] = new iam.Role(this, `${f.name}Role`, {
        description: f.roleDescription,
        assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
        inlinePolicies: {
          [f.binary]: new iam.PolicyDocument({
            statements: functionStatements(f.name, { ...refs, logGroupArn: fnLogGroups[f.name].logGroupArn }),
          }),
          // fan-out in the source's network: the ENI actions, inline so they exist with the role.
          ...(f.name === 'FanOut' && subnets.length > 0
            ? {
                'source-network': new iam.PolicyDocument({
                  statements: sourceNetworkStatements(subnets, securityGroups, refs),
                }),
              }
            : {}),
        },
      });
      const fn = new lambda.Function(this, `${f.name}Function`, {
        functionName: `${prefix}-${f.binary}`,
        description: f.description,
        runtime: lambda.Runtime.PROVIDED_AL2023,
        architecture: lambda.Architecture.ARM_64,
        handler: 'bootstrap',
        code: lambda.Code.fromAsset(assets[f.name]),
        role: roles[f.name],
        memorySize: f.memorySize,
        timeout: Duration.seconds(f.timeoutSeconds),
        loggingFormat: lambda.LoggingFormat.JSON,
        logGroup: fnLogGroups[f.name],
        environment: environment[f.name],
      });
      cfnOf(fn).addMetadata('checkov', { skip: FUNCTION_CHECKOV_SKIPS });
      // As SAM's Tracing (Active or PassThrough); the X-Ray statements are TracingPolicy's.
      cfnOf(fn).addPropertyOverride('TracingConfig', { Mode: tracing ? 'Active' : 'PassThrough' });
      functions[f.name] = fn;
    }
    this.functions = functions;
    this.functionRoles = roles;
    // The source's network (fan-out reads the source catalog); the ENI actions are its role's.
    if (subnets.length > 0) {
      cfnOf(functions.FanOut).addPropertyOverride('VpcConfig', {
        SubnetIds: subnets,
        SecurityGroupIds: securityGroups,
      });
    }

    // --- State machine ---------------------------------------------------------------------------
    const machineName = `${prefix}-migrate`;
    this.stateMachineRole = new iam.Role(this, 'MigrateStateMachineRole', {
      description: 'The migrate state machine - invokes the five functions and runs the Distributed Map.',
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com').withConditions({
        StringEquals: { 'aws:SourceAccount': account },
      }),
      inlinePolicies: {
        migrate: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'InvokeFunctions',
              actions: ['lambda:InvokeFunction'],
              resources: FUNCTIONS.flatMap((f) => [functions[f.name].functionArn, `${functions[f.name].functionArn}:*`]),
            }),
            // Distributed Map: the state machine starts its own child executions. The ARNs are
            // built from the fixed name, not from the state machine, to avoid a cycle.
            new iam.PolicyStatement({
              sid: 'DistributedMapStart',
              actions: ['states:StartExecution'],
              resources: [`arn:${partition}:states:${region}:${account}:stateMachine:${machineName}`],
            }),
            new iam.PolicyStatement({
              sid: 'DistributedMapChildren',
              actions: ['states:DescribeExecution', 'states:StopExecution', 'states:RedriveExecution'],
              resources: [`arn:${partition}:states:${region}:${account}:execution:${machineName}/*`],
            }),
            new iam.PolicyStatement({ sid: 'ListRuns', actions: ['s3:ListBucket'], resources: [this.bucket.bucketArn] }),
            new iam.PolicyStatement({
              sid: 'MapItemsAndResults',
              actions: ['s3:GetObject', 's3:PutObject', 's3:ListMultipartUploadParts', 's3:AbortMultipartUpload'],
              resources: [this.bucket.arnForObjects('runs/*')],
            }),
            new iam.PolicyStatement({
              sid: 'BucketKey',
              actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
              resources: [this.key.keyArn],
              conditions: { StringEquals: { 'kms:ViaService': `s3.${region}.amazonaws.com` } },
            }),
            // CloudWatch Logs delivery (logs:CreateLogDelivery ... on "*", an AWS requirement) is
            // added by sfn.StateMachine itself, because `logs` is set below.
          ],
        }),
      },
    });
    this.stateMachine = new sfn.StateMachine(this, 'MigrateStateMachine', {
      stateMachineName: machineName,
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromString(definition),
      definitionSubstitutions: {
        SnapshotFunctionArn: functions.Snapshot.functionArn,
        PollExportFunctionArn: functions.PollExport.functionArn,
        FanOutFunctionArn: functions.FanOut.functionArn,
        LoadChunkFunctionArn: functions.LoadChunk.functionArn,
        VerifyFunctionArn: functions.Verify.functionArn,
        ExportBucket: this.bucket.bucketName,
        LoadConcurrency: String(loadConcurrency),
      },
      role: this.stateMachineRole,
      logs: { destination: migrateLogGroup, level: sfn.LogLevel.ERROR, includeExecutionData: false },
    });
    if (tracing) {
      cfnOf(this.stateMachine).addPropertyOverride('TracingConfiguration', { Enabled: true });
      tracingPolicy(this, [...FUNCTIONS.map((f) => roles[f.name]), this.stateMachineRole]);
    }

    // --- Monitoring (infra/monitoring.yaml), tags, boundary -----------------------------------
    if (notificationEmail !== '') {
      this.key.addToResourcePolicy(notificationsKeyStatement(refs));
    }
    this.monitoring = includeMonitoring(this, {
      prefix,
      metricsNamespace,
      notificationEmail,
      keyArn: this.key.keyArn,
    });

    // --- Optional: start at the load stage when RDS reports an export completed ----------------
    if (props.enableExportCompletedTrigger) {
      const ruleRole = new iam.Role(this, 'ExportCompletedRuleRole', {
        description: 'Lets the export-completed EventBridge rule start the migrate state machine.',
        assumedBy: new iam.ServicePrincipal('events.amazonaws.com').withConditions({
          StringEquals: { 'aws:SourceAccount': account },
        }),
      });
      // RDS delivers events best effort: the polling path stays the primary one. The functions
      // read only this bucket, so an export written elsewhere fails at FanOut and loads nothing.
      this.exportCompletedRule = new events.Rule(this, 'ExportCompletedRule', {
        description: 'Starts the migrate state machine when a cluster snapshot export completes (RDS-EVENT-0164).',
        enabled: true,
        eventPattern: {
          source: ['aws.rds'],
          detailType: ['RDS DB Cluster Snapshot Event'],
          account: [account],
          region: [region],
          // Not the exports of the pipeline's own snapshots: the execution that made them loads them.
          detail: {
            EventID: ['RDS-EVENT-0164'],
            SourceArn: events.Match.anythingButPrefix(`arn:${partition}:rds:${region}:${account}:cluster-snapshot:snap2dsql-`),
          },
        },
        targets: [
          // Grants the role states:StartExecution on the state machine.
          new targets.SfnStateMachine(this.stateMachine, {
            role: ruleRole,
            input: events.RuleTargetInput.fromObject({
              export_source_arn: events.EventField.fromPath('$.detail.SourceArn'),
            }),
          }),
        ],
      });
    }
    Tags.of(this).add(STACK_TAG, prefix);
    if (props.permissionsBoundaryArn) {
      iam.PermissionsBoundary.of(this).apply(
        iam.ManagedPolicy.fromManagedPolicyArn(this, 'PermissionsBoundary', props.permissionsBoundaryArn),
      );
    }
  }
}

function cfnOf(c: Construct) {
  return c.node.defaultChild as import('aws-cdk-lib').CfnResource;
}

function checkPattern(name: string, value: string, pattern: RegExp) {
  if (!Token.isUnresolved(value) && !pattern.test(value)) {
    throw new Error(`${name} "${value}" does not match ${pattern}`);
  }
}

function checkInteger(name: string, value: number, min: number, max: number) {
  if (!Token.isUnresolved(value) && !(Number.isInteger(value) && value >= min && value <= max)) {
    throw new Error(`${name} ${value} is not an integer from ${min} to ${max}`);
  }
}

function readFile(what: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${what} ${file}: ${(e as Error).message}`);
  }
}

function functionAsset(dir: string, binary: string): string {
  const assetDir = path.resolve(dir, binary);
  if (!fs.existsSync(path.join(assetDir, 'bootstrap'))) {
    throw new Error(
      `${path.join(assetDir, 'bootstrap')} is missing: build the functions with ` +
        '`cargo lambda build --release --arm64 --lambda-dir <functionsDir>` (see README, "Deploying with CDK")',
    );
  }
  return assetDir;
}
