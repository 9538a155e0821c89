// Operability: the dashboard, the alarms and the optional notification topic come from the same
// file SAM nests as its Monitoring application (infra/monitoring.yaml), included with the values
// of its parameters; the tracing, network and boundary settings are the statements and
// properties infra/template.yaml gives the functions, roles and state machine.
import * as path from 'node:path';
import * as cfninc from 'aws-cdk-lib/cloudformation-include';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/** The monitoring template both deployments use (SAM nests it; the construct includes it). */
export const MONITORING_TEMPLATE_PATH = path.resolve(__dirname, '../../monitoring.yaml');

/** The tag every resource carries, with the stack's (or the construct's) name prefix as value. */
export const STACK_TAG = 'snap2dsql:stack';

/** Default CloudWatch namespace of the EMF metrics (shared/src/pipeline/metrics.rs). */
export const DEFAULT_METRICS_NAMESPACE = 'snap2dsql';

export interface MonitoringInputs {
  readonly prefix: string;
  readonly metricsNamespace: string;
  readonly notificationEmail: string;
  readonly keyArn: string;
  readonly templatePath?: string;
}

/**
 * Includes infra/monitoring.yaml: the dashboard, 13 alarms, and (with an e-mail address) the
 * notification topic, its subscription and policy, and the EventBridge rule on execution ends.
 * Logical ids are not preserved, so several migrations can share a stack.
 */
export function includeMonitoring(scope: Construct, inputs: MonitoringInputs): cfninc.CfnInclude {
  return new cfninc.CfnInclude(scope, 'Monitoring', {
    templateFile: inputs.templatePath ?? MONITORING_TEMPLATE_PATH,
    preserveLogicalIds: false,
    parameters: {
      MigrationName: inputs.prefix,
      MetricsNamespace: inputs.metricsNamespace,
      NotificationEmail: inputs.notificationEmail,
      KeyArn: inputs.keyArn,
    },
  });
}

/**
 * X-Ray: the write actions have no resource-level permissions (AWS requires "*"). A managed
 * policy each role names (ManagedPolicyArns), so a role has it before its function or state
 * machine exists.
 */
export function tracingPolicy(scope: Construct, roles: iam.IRole[]): iam.ManagedPolicy {
  const policy = new iam.ManagedPolicy(scope, 'TracingPolicy', {
    description: 'X-Ray write actions of the traced functions and state machine.',
    statements: [
      new iam.PolicyStatement({
        sid: 'XRay',
        actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets'],
        resources: ['*'],
      }),
    ],
  });
  for (const role of roles) role.addManagedPolicy(policy);
  return policy;
}

/**
 * The ENI actions of AWSLambdaVPCAccessExecutionRole for a function in the source's VPC, as the
 * role's inline policy (Lambda checks them when it creates the function). Describe* take no
 * resource (AWS requires "*"); an interface cannot be named before Lambda creates it
 * (network-interface/* of this account and region); the subnets and groups are the given ones,
 * in any partition, region and account (the ids are unique; a shared VPC's subnet belongs to
 * another account).
 */
export function sourceNetworkStatements(
  subnets: string[],
  securityGroups: string[],
  at: { partition: string; region: string; account: string },
): iam.PolicyStatement[] {
  const interfaces = `arn:${at.partition}:ec2:${at.region}:${at.account}:network-interface/*`;
  return [
    new iam.PolicyStatement({
      sid: 'DescribeNetwork',
      actions: ['ec2:DescribeNetworkInterfaces', 'ec2:DescribeSubnets'],
      resources: ['*'],
    }),
    new iam.PolicyStatement({
      sid: 'CreateInterfaces',
      actions: ['ec2:CreateNetworkInterface'],
      resources: [
        interfaces,
        ...subnets.map((id) => `arn:*:ec2:*:*:subnet/${id}`),
        ...securityGroups.map((id) => `arn:*:ec2:*:*:security-group/${id}`),
      ],
    }),
    new iam.PolicyStatement({
      sid: 'ManageInterfaces',
      actions: ['ec2:DeleteNetworkInterface', 'ec2:AssignPrivateIpAddresses', 'ec2:UnassignPrivateIpAddresses'],
      resources: [interfaces],
    }),
  ];
}

/** The key policy statement that lets EventBridge and CloudWatch alarms publish to the encrypted topic. */
export function notificationsKeyStatement(at: { partition: string; region: string; account: string }): iam.PolicyStatement {
  const prefix = (service: string) => `arn:${at.partition}:${service}:${at.region}:${at.account}`;
  return new iam.PolicyStatement({
    sid: 'NotificationsUse',
    principals: [new iam.ServicePrincipal('events.amazonaws.com'), new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
    actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
    resources: ['*'],
    // Only for this account's rules and alarms (the confused-deputy guard).
    conditions: {
      StringEquals: { 'aws:SourceAccount': at.account },
      ArnLike: { 'aws:SourceArn': [`${prefix('events')}:rule/*`, `${prefix('cloudwatch')}:alarm:*`] },
    },
  });
}
