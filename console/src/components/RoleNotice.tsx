import Alert from '@cloudscape-design/components/alert';
import { useSession } from '../shell/session';

/** Explains, before any request is refused, that a page needs a role the signed-in key lacks. */
export default function RoleNotice({ needed, what }: { needed: string; what: string }) {
  const { role } = useSession();
  return (
    <Alert type="info" header={`${what} needs the ${needed} role`}>
      Your key has the {role ?? 'no'} role. Ask an admin of this tenant for a key with the {needed} role.
    </Alert>
  );
}
