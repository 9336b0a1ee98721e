import Alert from '@cloudscape-design/components/alert';
import Button from '@cloudscape-design/components/button';
import type { ApiError } from '../api/errors';
import { explainForbidden } from '../api/errors';
import { useSession } from '../shell/session';

export interface ErrorAlertProps {
  error: ApiError | null | undefined;
  /** Shown for network failures and 5xx: runs the same request again (inputs are kept). */
  onRetry?: () => void;
  /** The role the action needs, named when the API answers 403. */
  requiredRole?: string;
  header?: string;
}

/** "<code>: <message>" for any API error, a Retry for network failures and 5xx, the role for 403. */
export default function ErrorAlert({ error, onRetry, requiredRole, header }: ErrorAlertProps) {
  const { role } = useSession();
  if (!error) return null;
  const forbidden = error.status === 403;
  return (
    <Alert
      type="error"
      header={header ?? (forbidden ? 'Not allowed' : error.retryable ? 'The request did not go through' : 'The request was refused')}
      action={
        error.retryable && onRetry ? (
          <Button onClick={onRetry} ariaLabel="Retry">
            Retry
          </Button>
        ) : undefined
      }
    >
      <span data-testid="error-code">{error.code}</span>: {error.message}
      {forbidden ? <div>{explainForbidden(error, requiredRole, role ?? undefined)}</div> : null}
      {error.retryAfter ? <div>Try again in {error.retryAfter} s.</div> : null}
    </Alert>
  );
}
