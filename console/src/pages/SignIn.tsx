import { useState } from 'react';
import ContentLayout from '@cloudscape-design/components/content-layout';
import Header from '@cloudscape-design/components/header';
import Container from '@cloudscape-design/components/container';
import Form from '@cloudscape-design/components/form';
import FormField from '@cloudscape-design/components/form-field';
import Input from '@cloudscape-design/components/input';
import Button from '@cloudscape-design/components/button';
import SpaceBetween from '@cloudscape-design/components/space-between';
import Link from '@cloudscape-design/components/link';
import Alert from '@cloudscape-design/components/alert';
import { asApiError, type ApiError } from '../api/errors';
import { useSession } from '../shell/session';
import { useRoute } from '../lib/router';

export default function SignIn() {
  const { signIn } = useSession();
  const route = useRoute();
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<ApiError | null>(null);

  async function submit() {
    if (!key.trim()) {
      setError(null);
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await signIn(key.trim());
    } catch (e) {
      setError(asApiError(e));
    } finally {
      setBusy(false);
    }
  }

  return (
    <ContentLayout header={<Header variant="h1" description="Use an operator key or a tenant's API key. It is kept in this tab only and forgotten when you sign out or close it.">Sign in</Header>}>
      <SpaceBetween size="l">
        {route.params.get('expired') ? <Alert type="warning">Your key was refused (revoked, expired or unknown). Sign in again.</Alert> : null}
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void submit();
          }}
        >
          <Form
            actions={
              <SpaceBetween direction="horizontal" size="xs">
                {error?.retryable ? (
                  <Button formAction="none" onClick={() => void submit()}>
                    Retry
                  </Button>
                ) : null}
                <Button variant="primary" loading={busy} disabled={!key.trim()}>
                  Sign in
                </Button>
              </SpaceBetween>
            }
          >
            <Container>
              <FormField
                label="API key"
                description="raas_… for a tenant, raasop_… for the operator."
                errorText={error ? `${error.code}: ${error.message}` : undefined}
              >
                <Input type="password" value={key} onChange={(e) => setKey(e.detail.value)} autoComplete={false} autoFocus />
              </FormField>
            </Container>
          </Form>
        </form>
        <Link href="#/pricing">Pricing calculator</Link>
      </SpaceBetween>
    </ContentLayout>
  );
}
