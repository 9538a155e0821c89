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

/** X-Ray: the write actions have no resource-level permissions (AWS requires "*"). */
export function tracingPolicy(scope: Construct, roles: iam.IRole[]): iam.Policy {
  return new iam.Policy(scope, 'TracingPolicy', {
    policyName: 'xray',
    roles,
    statements: [
      new iam.PolicyStatement({
        sid: 'XRay',
        actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords', 'xray:GetSamplingRules', 'xray:GetSamplingTargets'],
        resources: ['*'],
      }),
    ],
  });
}

/**
 * The ENI actions of AWSLambdaVPCAccessExecutionRole for a function in the source's VPC: Lambda
 * creates the interfaces, so no statement can name them in advance (AWS requires "*").
 */
export function sourceNetworkPolicy(scope: Construct, role: iam.IRole): iam.Policy {
  const policy = new iam.Policy(scope, 'SourceNetworkPolicy', {
    policyName: 'source-network',
    roles: [role],
    statements: [
      new iam.PolicyStatement({
        sid: 'NetworkInterfaces',
        actions: [
          'ec2:CreateNetworkInterface',
          'ec2:DescribeNetworkInterfaces',
          'ec2:DescribeSubnets',
          'ec2:DeleteNetworkInterface',
          'ec2:AssignPrivateIpAddresses',
          'ec2:UnassignPrivateIpAddresses',
        ],
        resources: ['*'],
      }),
    ],
  });
  (policy.node.defaultChild as import('aws-cdk-lib').CfnResource).addMetadata('checkov', {
    skip: [
      {
        id: 'CKV_AWS_111',
        comment:
          'the ENI actions take no resource Lambda could name before it creates the interface (AWSLambdaVPCAccessExecutionRole grants them on "*" too).',
      },
    ],
  });
  return policy;
}

/** The key policy statement that lets EventBridge and CloudWatch alarms publish to the encrypted topic. */
export function notificationsKeyStatement(): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'NotificationsUse',
    principals: [new iam.ServicePrincipal('events.amazonaws.com'), new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
    actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
    resources: ['*'],
  });
}
