import '@cloudscape-design/global-styles/index.css';
import './print.css';
import { createRoot } from 'react-dom/client';
import { loadRuntimeConfig } from './api/client';
import App from './shell/App';

// config.json (next to index.html) names the API; it is read before anything is drawn.
void loadRuntimeConfig().then(() => {
  const root = document.getElementById('root');
  if (root) createRoot(root).render(<App />);
});
