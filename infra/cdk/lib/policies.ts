// The five functions (as in infra/template.yaml: crate -> <Name>Function -> ASL state) and the
// statements of each one's role: only the actions the function calls, on named resources. The few
// "*" resources are AWS requirements and say why beside them.
import * as iam from 'aws-cdk-lib/aws-iam';

export type FunctionName = 'Snapshot' | 'PollExport' | 'FanOut' | 'LoadChunk' | 'Verify';

export interface FunctionSpec {
  /** SAM logical id stem: <name>Function, <name>Role, <name>LogGroup. */
  readonly name: FunctionName;
  /** The crate and binary under functions/; also the function name suffix. */
  readonly binary: string;
  readonly description: string;
  readonly roleDescription: string;
  readonly memorySize: number;
  readonly timeoutSeconds: number;
}

export const FUNCTIONS: readonly FunctionSpec[] = [
  {
    name: 'Snapshot',
    binary: 'snapshot',
    description: 'Creates (or takes) the cluster snapshot and starts its export to S3.',
    roleDescription: 'snapshot function - creates the cluster snapshot and starts the S3 export.',
    memorySize: 512,
    timeoutSeconds: 60,
  },
  {
    name: 'PollExport',
    binary: 'poll-export',
    description: "Reads the export task's status for the poll loop.",
    roleDescription: "poll-export function - reads the export task's status.",
    memorySize: 512,
    timeoutSeconds: 60,
  },
  {
    name: 'FanOut',
    binary: 'fan-out',
    description: 'Reads the export and mapping, creates the target tables, writes the chunk list under runs/.',
    roleDescription:
      'fan-out function - reads the export and the mapping, creates the target tables, writes the chunk list.',
    memorySize: 1024,
    timeoutSeconds: 900,
  },
  {
    name: 'LoadChunk',
    binary: 'load-chunk',
    description: 'Loads one chunk into DSQL, exactly once (ledger).',
    roleDescription: 'load-chunk function - loads one chunk of Parquet rows into DSQL.',
    memorySize: 2048,
    timeoutSeconds: 900,
  },
  {
    name: 'Verify',
    binary: 'verify',
    description: 'Verifies the target against the export and writes runs/<execution>/verify-report.json.',
    roleDescription: 'verify function - compares the target with the export and writes the report.',
    memorySize: 1024,
    timeoutSeconds: 900,
  },
];

export interface PolicyRefs {
  readonly bucketArn: string;
  readonly keyArn: string;
  readonly exportRoleArn: string;
  readonly dsqlClusterArn: string;
  readonly sourceClusterId: string;
  readonly logGroupArn: string;
  readonly partition: string;
  readonly region: string;
  readonly account: string;
}

const allow = (sid: string, actions: string[], resources: string[], conditions?: Record<string, unknown>) =>
  new iam.PolicyStatement({ sid, actions, resources, conditions });

/** The statements of one function's role. */
export function functionStatements(name: FunctionName, r: PolicyRefs): iam.PolicyStatement[] {
  const objects = `${r.bucketArn}/*`;
  const runs = `${r.bucketArn}/runs/*`;
  const viaS3 = { StringEquals: { 'kms:ViaService': `s3.${r.region}.amazonaws.com` } };
  const logs = allow('Logs', ['logs:CreateLogStream', 'logs:PutLogEvents'], [r.logGroupArn]);
  const dsql = allow('DsqlAdmin', ['dsql:DbConnectAdmin'], [r.dsqlClusterArn]);
  // DescribeExportTasks by identifier or source ARN is authorised on "*" (AWS requirement). Read-only.
  const cluster = `arn:${r.partition}:rds:${r.region}:${r.account}:cluster:`;
  const snapshot = `arn:${r.partition}:rds:${r.region}:${r.account}:cluster-snapshot:`;
  const describeExports = allow('DescribeExports', ['rds:DescribeExportTasks'], ['*']);
  switch (name) {
    case 'Snapshot':
      return [
        logs,
        // Snapshots only of the configured cluster and of clusters tagged snap2dsql-source=true;
        // exports only of the pipeline's own snapshots (snap2dsql-*) and of tagged snapshots.
        ...(r.sourceClusterId === ''
          ? []
          : [allow('SnapshotTheSourceCluster', ['rds:CreateDBClusterSnapshot'], [`${cluster}${r.sourceClusterId}`])]),
        allow('SnapshotTaggedClusters', ['rds:CreateDBClusterSnapshot'], [`${cluster}*`], {
          StringEquals: { 'rds:cluster-tag/snap2dsql-source': 'true' },
        }),
        allow('CreateOwnSnapshots', ['rds:CreateDBClusterSnapshot', 'rds:AddTagsToResource'], [`${snapshot}snap2dsql-*`]),
        allow('ExportOwnSnapshots', ['rds:StartExportTask'], [`${snapshot}snap2dsql-*`]),
        allow('ExportTaggedSnapshots', ['rds:StartExportTask'], [`${snapshot}*`], {
          StringEquals: { 'rds:cluster-snapshot-tag/snap2dsql-source': 'true' },
        }),
        allow('DescribeSnapshots', ['rds:DescribeDBClusterSnapshots'], [`${cluster}*`, `${snapshot}*`]),
        describeExports,
        allow('PassExportRole', ['iam:PassRole'], [r.exportRoleArn]),
        // StartExportTask: the caller describes the key and creates (RDS later retires) a grant.
        allow('ExportKeyDescribe', ['kms:DescribeKey', 'kms:RetireGrant'], [r.keyArn]),
        // Grants only when RDS creates them on the caller's behalf.
        allow('ExportKeyGrant', ['kms:CreateGrant'], [r.keyArn], { Bool: { 'kms:GrantIsForAWSResource': 'true' } }),
      ];
    case 'PollExport':
      return [logs, describeExports];
    case 'FanOut':
      return [
        logs,
        allow('ListExportBucket', ['s3:ListBucket'], [r.bucketArn]),
        allow('ReadExportAndMapping', ['s3:GetObject'], [objects]),
        allow('WriteRunArtefacts', ['s3:PutObject'], [runs]),
        allow('BucketKey', ['kms:Decrypt', 'kms:GenerateDataKey'], [r.keyArn], viaS3),
        dsql,
      ];
    case 'LoadChunk':
      return [
        logs,
        // No s3:ListBucket: each chunk item names its part file, so load-chunk lists nothing.
        allow('ReadExport', ['s3:GetObject'], [objects]),
        allow('BucketKey', ['kms:Decrypt'], [r.keyArn], viaS3),
        dsql,
      ];
    case 'Verify':
      return [
        logs,
        allow('ListExportBucket', ['s3:ListBucket'], [r.bucketArn]),
        allow('ReadExportAndRuns', ['s3:GetObject'], [objects]),
        allow('WriteReport', ['s3:PutObject'], [runs]),
        allow('BucketKey', ['kms:Decrypt', 'kms:GenerateDataKey'], [r.keyArn], viaS3),
        dsql,
      ];
  }
}
